//! CONNECT client: one request/response exchange per proxy, through a chain.
//!
//! * Request (Luotonen, "The CONNECT Method"; MS-SSTP §4.5):
//!   `CONNECT host:port HTTP/1.1`, `Host: host:port`, then caller headers such
//!   as `SSTPVERSION: 1.0`, then `Proxy-Authorization` (Basic, Digest or
//!   NTLM) when sending credentials.
//! * Response (Luotonen, "Proxy Response"): HTTP/1.0 or 1.1, CRLF or LF, any
//!   reason phrase; 2xx opens the tunnel and every byte after the head belongs
//!   to it; 1xx interim heads are skipped.
//! * 407 (Luotonen, "Extensibility"): answered with the strongest scheme
//!   offered that [`crate::auth`] supports (Digest, NTLM, Basic), on the
//!   same connection when the proxy keeps it open and the body length is
//!   known and small, else on a new connection (the driver redials and the
//!   credentials go up front; NTLM starts over there). 403, 502/503/504 and
//!   other codes are errors.
//! * Chains (Luotonen, "Multiple Proxy Servers"): hop 1 is asked to CONNECT
//!   to hop 2, hop 2 (through that tunnel) to hop 3, ..., the last hop to the
//!   target.
//!
//! The engine is sans-IO: the driver writes what [`ChainHandshake::poll_transmit`]
//! returns, feeds received bytes to [`ChainHandshake::handle_input`] and drains
//! the `consumed` bytes it reports, and owns all timeouts.

use crate::auth::{AuthMemo, Entropy, HopAuth, Retry};
use crate::basic::Credentials;
use crate::challenge;
use crate::head::{sanitize, Header, Headers, Parsed, RequestHead, ResponseHead};
use crate::{Authority, HeadError};

/// Largest 407 body skipped to reuse the connection; larger means redial.
pub const MAX_DISCARD: u64 = 64 * 1024;

/// One proxy of a chain, nearest first.
#[derive(Clone, Debug)]
pub struct ProxyHop {
    /// Where the proxy listens.
    pub proxy: Authority,
    /// Credentials for this proxy, if any.
    pub credentials: Option<Credentials>,
    /// Send the credentials with the first request instead of waiting for 407.
    pub auth_upfront: bool,
    /// What an earlier handshake learned (a Digest nonce): credentials go
    /// up front with it.
    pub memo: Option<AuthMemo>,
}

/// What went wrong with one proxy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The reply is not an HTTP/1.x response head.
    #[error("malformed reply: {0}")]
    Malformed(#[from] HeadError),
    /// 403: the proxy's policy refuses the tunnel.
    #[error("tunnel refused by policy ({status} {reason})")]
    Denied {
        /// Status code.
        status: u16,
        /// Reason phrase (sanitized).
        reason: String,
    },
    /// 407 after our credentials, or without credentials to send, or with
    /// only schemes we do not support.
    #[error("{}", auth_message(*had_credentials, *scheme, offered))]
    AuthRequired {
        /// Credentials were sent and refused.
        had_credentials: bool,
        /// The scheme we used or would use; `None` if no offered scheme is
        /// supported.
        scheme: Option<&'static str>,
        /// The schemes the proxy offered (sanitized), for messages.
        offered: String,
    },
    /// The proxy's side of a multi-step scheme (NTLM) was unusable.
    #[error("{scheme} proxy authentication failed: {what}")]
    AuthProtocol {
        /// The scheme.
        scheme: &'static str,
        /// What was wrong.
        what: String,
    },
    /// 502, 503 or 504: the proxy could not reach the next hop.
    #[error("proxy could not reach the next hop ({status} {reason})")]
    Upstream {
        /// Status code.
        status: u16,
        /// Reason phrase (sanitized).
        reason: String,
    },
    /// Any other non-2xx status.
    #[error("unexpected reply {status} {reason}")]
    Status {
        /// Status code.
        status: u16,
        /// Reason phrase (sanitized).
        reason: String,
    },
    /// The proxy closed the connection before replying.
    #[error("connection closed before a reply")]
    Closed,
    /// The handshake is already finished or failed (driver bug).
    #[error("handshake already finished")]
    Finished,
}

fn auth_message(had: bool, scheme: Option<&str>, offered: &str) -> String {
    match (had, scheme) {
        (_, None) => {
            format!("proxy authentication required with schemes we do not support ({offered})")
        }
        (true, Some(s)) => format!("proxy authentication failed: {s} credentials refused (407)"),
        (false, Some(s)) => {
            format!("proxy authentication required ({s}) and no credentials are configured")
        }
    }
}

/// A [`ClientError`] with the proxy it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("proxy {proxy} (hop {}): {error}", hop + 1)]
pub struct HopError {
    /// Index of the proxy in the chain, 0 = nearest.
    pub hop: usize,
    /// The proxy's address.
    pub proxy: Authority,
    /// What happened.
    pub error: ClientError,
}

/// Something the driver must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Hop `hop` opened its tunnel; the request for the next hop is queued.
    HopEstablished {
        /// Index of the proxy that answered 2xx.
        hop: usize,
    },
    /// Close the connection, dial the first proxy again, and start over
    /// (the queued request carries credentials up front).
    Reconnect,
    /// The whole chain is open: the remaining input belongs to the tunnel.
    Established {
        /// The final proxy's response head.
        response: ResponseHead,
    },
}

/// Result of [`ChainHandshake::handle_input`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of the input used; the driver removes them from its buffer.
    pub consumed: usize,
    /// What happened, if anything. `None` with `consumed == 0` means "read
    /// more"; `None` with `consumed > 0` means "call again".
    pub event: Option<Event>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Await {
        sent_credentials: bool,
        reused: bool,
    },
    Discard {
        remaining: u64,
    },
    Done,
    Failed,
}

#[derive(Debug, Clone)]
struct Hop {
    cfg: ProxyHop,
    auth: HopAuth,
}

/// The client side of a CONNECT handshake through one or more proxies.
#[derive(Debug)]
pub struct ChainHandshake {
    hops: Vec<Hop>,
    target: Authority,
    extra: Headers,
    max_head: usize,
    index: usize,
    phase: Phase,
    pending: Option<Vec<u8>>,
    reconnects: usize,
    rng: Entropy,
}

impl ChainHandshake {
    /// Starts a handshake to `target` through `hops` (nearest first, at
    /// least one). `extra` headers are sent to every hop; `max_head` bounds
    /// each response head.
    ///
    /// # Panics
    /// If `hops` is empty.
    pub fn new(hops: Vec<ProxyHop>, target: Authority, extra: Headers, max_head: usize) -> Self {
        Self::with_entropy(hops, target, extra, max_head, [0; 32], 0)
    }

    /// Like [`Self::new`], with the random seed for Digest client nonces and
    /// NTLM client challenges, and the current time in seconds since 1970
    /// for NTLMv2 (the crate has neither a random source nor a clock;
    /// [`Self::new`] uses zeros).
    ///
    /// # Panics
    /// If `hops` is empty.
    pub fn with_entropy(
        hops: Vec<ProxyHop>,
        target: Authority,
        extra: Headers,
        max_head: usize,
        seed: [u8; 32],
        unix_secs: u64,
    ) -> Self {
        assert!(!hops.is_empty(), "a proxy chain needs at least one proxy");
        let mut hs = ChainHandshake {
            hops: hops
                .into_iter()
                .map(|cfg| Hop {
                    auth: HopAuth::new(cfg.credentials.clone(), cfg.auth_upfront, cfg.memo.clone()),
                    cfg,
                })
                .collect(),
            target,
            extra,
            max_head,
            index: 0,
            phase: Phase::Failed,
            pending: None,
            reconnects: 0,
            rng: Entropy::new(seed, unix_secs),
        };
        hs.start_hop(0, false);
        hs
    }

    /// Per hop, what to pass as [`ProxyHop::memo`] to a later handshake
    /// (valid once established).
    pub fn memos(&self) -> Vec<Option<AuthMemo>> {
        self.hops.iter().map(|h| h.auth.memo()).collect()
    }

    /// The proxy the driver must dial (the nearest one).
    pub fn first_proxy(&self) -> &Authority {
        &self.hops[0].cfg.proxy
    }

    /// The proxy currently being talked to.
    pub fn current_proxy(&self) -> &Authority {
        &self.hops[self.index].cfg.proxy
    }

    /// Index of the proxy currently being talked to.
    pub fn current_hop(&self) -> usize {
        self.index
    }

    /// True once [`Event::Established`] was returned.
    pub fn is_established(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Bytes to send now, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.pending.take()
    }

    fn next_target(&self, i: usize) -> &Authority {
        match self.hops.get(i + 1) {
            Some(h) => &h.cfg.proxy,
            None => &self.target,
        }
    }

    fn build_request(&mut self, i: usize) -> Vec<u8> {
        let target = self.next_target(i).clone();
        let auth = self.hops[i].auth.header(&target.to_string(), &mut self.rng);
        let mut headers = Headers::new();
        // The authority is validated, so this cannot fail.
        if let Ok(h) = Header::new("Host", &target.to_string()) {
            headers.push(h);
        }
        for h in self.extra.iter() {
            headers.push(h.clone());
        }
        if let Some(v) = auth {
            if let Ok(h) = Header::new("Proxy-Authorization", &v) {
                headers.push(h);
            }
        }
        let mut out = Vec::new();
        // An Authority is always a valid request target.
        RequestHead::new("CONNECT", &target.to_string(), headers)
            .expect("an Authority is a valid request target")
            .emit(&mut out);
        out
    }

    fn start_hop(&mut self, i: usize, reused: bool) {
        self.index = i;
        self.pending = Some(self.build_request(i));
        self.phase = Phase::Await {
            sent_credentials: self.hops[i].auth.sent_credentials(),
            reused,
        };
    }

    fn fail(&mut self, error: ClientError) -> HopError {
        self.phase = Phase::Failed;
        self.pending = None;
        HopError {
            hop: self.index,
            proxy: self.hops[self.index].cfg.proxy.clone(),
            error,
        }
    }

    fn reconnect(&mut self) -> Result<Event, HopError> {
        // Each redial follows a 407 or a close after one, and sets a
        // hop's credentials up front, so this is bounded by the hop count.
        self.reconnects += 1;
        if self.reconnects > self.hops.len() + 1 {
            return Err(self.fail(ClientError::Closed));
        }
        for h in &mut self.hops {
            h.auth.on_new_connection();
        }
        self.start_hop(0, false);
        Ok(Event::Reconnect)
    }

    /// Feeds the bytes received so far (the driver's whole unconsumed
    /// buffer). See [`Progress`] for what to do with the result.
    pub fn handle_input(&mut self, buf: &[u8]) -> Result<Progress, HopError> {
        match self.phase.clone() {
            Phase::Done | Phase::Failed => Err(self.fail(ClientError::Finished)),
            Phase::Discard { remaining } => {
                let n = remaining.min(buf.len() as u64);
                let left = remaining - n;
                if left == 0 {
                    self.start_hop(self.index, true);
                } else {
                    self.phase = Phase::Discard { remaining: left };
                }
                Ok(Progress {
                    consumed: n as usize,
                    event: None,
                })
            }
            Phase::Await { .. } => {
                let (head, len) = match ResponseHead::parse(buf, self.max_head) {
                    Ok(Parsed::Partial) => {
                        return Ok(Progress {
                            consumed: 0,
                            event: None,
                        })
                    }
                    Ok(Parsed::Complete { head, len }) => (head, len),
                    Err(e) => return Err(self.fail(ClientError::Malformed(e))),
                };
                self.on_response(head, len)
            }
        }
    }

    fn on_response(&mut self, head: ResponseHead, len: usize) -> Result<Progress, HopError> {
        let status = head.status();
        let reason = sanitize(head.reason(), 120);
        let progress = |event| Progress {
            consumed: len,
            event,
        };
        match status {
            // 101 Switching Protocols is not an interim answer to CONNECT.
            100..=199 if status != 101 => Ok(progress(None)),
            200..=299 => {
                if self.index + 1 == self.hops.len() {
                    self.phase = Phase::Done;
                    Ok(progress(Some(Event::Established { response: head })))
                } else {
                    let hop = self.index;
                    self.start_hop(hop + 1, false);
                    Ok(progress(Some(Event::HopEstablished { hop })))
                }
            }
            407 => {
                let challenges = challenge::parse_all(
                    head.headers()
                        .get_all("proxy-authenticate")
                        .map(|h| h.value()),
                );
                let retry = match self.hops[self.index]
                    .auth
                    .on_407(&challenges, &mut self.rng)
                {
                    Ok(r) => r,
                    Err(e) => return Err(self.fail(e)),
                };
                let body = reusable_body_len(&head);
                if retry == Retry::SameConnection && body.is_none() {
                    return Err(self.fail(ClientError::AuthProtocol {
                        scheme: "NTLM",
                        what: "the proxy closed the connection in the middle of the handshake"
                            .into(),
                    }));
                }
                match body {
                    Some(0) => {
                        self.start_hop(self.index, true);
                        Ok(progress(None))
                    }
                    Some(n) => {
                        self.phase = Phase::Discard { remaining: n };
                        Ok(progress(None))
                    }
                    None => {
                        let ev = self.reconnect()?;
                        Ok(progress(Some(ev)))
                    }
                }
            }
            403 => Err(self.fail(ClientError::Denied { status, reason })),
            502..=504 => Err(self.fail(ClientError::Upstream { status, reason })),
            _ => Err(self.fail(ClientError::Status { status, reason })),
        }
    }

    /// The connection reached end of file. Returns [`Event::Reconnect`] when
    /// a credentials retry can still be made on a new connection, else the
    /// error to report.
    pub fn handle_eof(&mut self) -> Result<Event, HopError> {
        match self.phase {
            // The proxy closed after its 407 body, or right after we reused
            // the connection for the retry: redial with credentials up front.
            Phase::Discard { .. } => self.reconnect(),
            Phase::Await {
                sent_credentials: true,
                reused: true,
            } => self.reconnect(),
            Phase::Done | Phase::Failed => Err(self.fail(ClientError::Finished)),
            Phase::Await { .. } => Err(self.fail(ClientError::Closed)),
        }
    }
}

/// If the 407's connection can be reused, the length of its body.
fn reusable_body_len(head: &ResponseHead) -> Option<u64> {
    let h = head.headers();
    if h.has_token("connection", "close") || h.has_token("proxy-connection", "close") {
        return None;
    }
    if head.version() == crate::Version::Http10
        && !h.has_token("connection", "keep-alive")
        && !h.has_token("proxy-connection", "keep-alive")
    {
        return None;
    }
    if h.contains("transfer-encoding") {
        return None;
    }
    let mut len: Option<u64> = None;
    for v in h.get_all("content-length") {
        let v = v.value();
        if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n: u64 = std::str::from_utf8(v).ok()?.parse().ok()?;
        if len.is_some_and(|l| l != n) {
            return None;
        }
        len = Some(n);
    }
    len.filter(|&n| n <= MAX_DISCARD)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DEFAULT_MAX_HEAD;

    fn auth(s: &str) -> Authority {
        Authority::parse(s).unwrap()
    }

    fn hop(s: &str, creds: Option<(&str, &str)>, upfront: bool) -> ProxyHop {
        ProxyHop {
            proxy: auth(s),
            credentials: creds.map(|(u, p)| Credentials::new(u, p).unwrap()),
            auth_upfront: upfront,
            memo: None,
        }
    }

    fn sstp_headers() -> Headers {
        let mut h = Headers::new();
        h.push(Header::new("SSTPVERSION", "1.0").unwrap());
        h
    }

    fn tx(hs: &mut ChainHandshake) -> String {
        String::from_utf8(hs.poll_transmit().expect("a request is queued")).unwrap()
    }

    #[test]
    fn single_hop_sstp_request_and_leftover() {
        let mut hs = ChainHandshake::new(
            vec![hop("proxy:3128", None, false)],
            auth("vpn.example.com:443"),
            sstp_headers(),
            DEFAULT_MAX_HEAD,
        );
        assert_eq!(hs.first_proxy(), &auth("proxy:3128"));
        assert_eq!(
            tx(&mut hs),
            "CONNECT vpn.example.com:443 HTTP/1.1\r\nHost: vpn.example.com:443\r\nSSTPVERSION: 1.0\r\n\r\n"
        );
        assert_eq!(hs.poll_transmit(), None);
        let reply =
            b"HTTP/1.0 200 Connection established\nProxy-agent: Netscape-Proxy/1.1\n\n\x16\x03\x03";
        // Partial input first.
        let p = hs.handle_input(&reply[..20]).unwrap();
        assert_eq!(
            p,
            Progress {
                consumed: 0,
                event: None
            }
        );
        let p = hs.handle_input(reply).unwrap();
        assert_eq!(p.consumed, reply.len() - 3);
        assert!(
            matches!(p.event, Some(Event::Established { ref response }) if response.status() == 200)
        );
        assert!(hs.is_established());
        assert!(hs.handle_input(b"").is_err());
    }

    #[test]
    fn interim_then_ok() {
        let mut hs = ChainHandshake::new(
            vec![hop("p:1", None, false)],
            auth("t:443"),
            Headers::new(),
            1024,
        );
        hs.poll_transmit();
        let buf = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n";
        let p = hs.handle_input(buf).unwrap();
        assert_eq!(
            p,
            Progress {
                consumed: 25,
                event: None
            }
        );
        let p = hs.handle_input(&buf[25..]).unwrap();
        assert!(matches!(p.event, Some(Event::Established { .. })));
    }

    #[test]
    fn upfront_credentials() {
        let mut hs = ChainHandshake::new(
            vec![hop("p:1", Some(("hello", "world")), true)],
            auth("t:443"),
            Headers::new(),
            1024,
        );
        let req = tx(&mut hs);
        assert!(
            req.ends_with("Proxy-Authorization: Basic aGVsbG86d29ybGQ=\r\n\r\n"),
            "{req}"
        );
        // A 407 after up-front credentials is final.
        let e = hs
            .handle_input(b"HTTP/1.1 407 Nope\r\nProxy-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\n\r\n")
            .unwrap_err();
        assert!(
            matches!(
                e.error,
                ClientError::AuthRequired {
                    had_credentials: true,
                    ..
                }
            ),
            "{:?}",
            e.error
        );
        assert_eq!(e.hop, 0);
        assert!(e.to_string().contains("proxy p:1 (hop 1)"), "{e}");
    }

    #[test]
    fn retry_407_on_same_connection_with_body() {
        let mut hs = ChainHandshake::new(
            vec![hop("p:1", Some(("u", "pw")), false)],
            auth("t:443"),
            Headers::new(),
            1024,
        );
        let first = tx(&mut hs);
        assert!(!first.contains("Proxy-Authorization"));
        let reply = b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"squid\"\r\nContent-Length: 10\r\n\r\n0123456789";
        let p = hs.handle_input(reply).unwrap();
        assert_eq!(p.event, None);
        assert_eq!(p.consumed, reply.len() - 10);
        assert_eq!(
            hs.poll_transmit(),
            None,
            "no retry before the body is skipped"
        );
        // Body arrives in two pieces.
        let p = hs.handle_input(b"0123").unwrap();
        assert_eq!(p.consumed, 4);
        assert_eq!(hs.poll_transmit(), None);
        let p = hs.handle_input(b"456789HTTP/1.1").unwrap();
        assert_eq!(p.consumed, 6);
        let retry = tx(&mut hs);
        assert!(
            retry.contains("Proxy-Authorization: Basic dTpwdw==\r\n"),
            "{retry}"
        );
        let p = hs.handle_input(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
        assert!(matches!(p.event, Some(Event::Established { .. })));
    }

    #[test]
    fn retry_407_empty_body_then_refused() {
        let mut hs = ChainHandshake::new(
            vec![hop("p:1", Some(("u", "bad")), false)],
            auth("t:443"),
            Headers::new(),
            1024,
        );
        hs.poll_transmit();
        let p = hs
            .handle_input(b"HTTP/1.1 407 x\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        assert_eq!(p.event, None);
        assert!(tx(&mut hs).contains("Proxy-Authorization"));
        let e = hs
            .handle_input(b"HTTP/1.1 407 x\r\nContent-Length: 0\r\n\r\n")
            .unwrap_err();
        assert!(
            matches!(
                e.error,
                ClientError::AuthRequired {
                    had_credentials: true,
                    ..
                }
            ),
            "{:?}",
            e.error
        );
    }

    #[test]
    fn retry_407_needs_reconnect() {
        for reply in [
            &b"HTTP/1.1 407 x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"[..],
            b"HTTP/1.1 407 x\r\nProxy-Connection: close\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.0 407 x\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 407 x\r\n\r\n",
            b"HTTP/1.1 407 x\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 407 x\r\nContent-Length: 99999999\r\n\r\n",
            b"HTTP/1.1 407 x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        ] {
            let mut hs = ChainHandshake::new(
                vec![hop("p:1", Some(("u", "pw")), false)],
                auth("t:443"),
                Headers::new(),
                1024,
            );
            hs.poll_transmit();
            let p = hs.handle_input(reply).unwrap();
            assert_eq!(
                p.event,
                Some(Event::Reconnect),
                "{:?}",
                String::from_utf8_lossy(reply)
            );
            assert!(tx(&mut hs).contains("Proxy-Authorization"));
            let p = hs.handle_input(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
            assert!(matches!(p.event, Some(Event::Established { .. })));
        }
        // HTTP/1.0 with keep-alive is reusable.
        let mut hs = ChainHandshake::new(
            vec![hop("p:1", Some(("u", "pw")), false)],
            auth("t:443"),
            Headers::new(),
            1024,
        );
        hs.poll_transmit();
        let p = hs
            .handle_input(
                b"HTTP/1.0 407 x\r\nProxy-Connection: keep-alive\r\nContent-Length: 0\r\n\r\n",
            )
            .unwrap();
        assert_eq!(p.event, None);
    }

    #[test]
    fn eof_during_discard_or_after_reuse_redials_once() {
        let mut hs = ChainHandshake::new(
            vec![hop("p:1", Some(("u", "pw")), false)],
            auth("t:443"),
            Headers::new(),
            1024,
        );
        hs.poll_transmit();
        hs.handle_input(b"HTTP/1.1 407 x\r\nContent-Length: 5\r\n\r\n")
            .unwrap();
        assert_eq!(hs.handle_eof().unwrap(), Event::Reconnect);
        assert!(tx(&mut hs).contains("Proxy-Authorization"));
        // After a redial, EOF is final.
        assert_eq!(hs.handle_eof().unwrap_err().error, ClientError::Closed);

        let mut hs = ChainHandshake::new(
            vec![hop("p:1", Some(("u", "pw")), false)],
            auth("t:443"),
            Headers::new(),
            1024,
        );
        hs.poll_transmit();
        hs.handle_input(b"HTTP/1.1 407 x\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        hs.poll_transmit();
        assert_eq!(hs.handle_eof().unwrap(), Event::Reconnect);
    }

    #[test]
    fn no_credentials_or_no_basic() {
        let mut hs = ChainHandshake::new(
            vec![hop("p:1", None, false)],
            auth("t:443"),
            Headers::new(),
            1024,
        );
        hs.poll_transmit();
        let e = hs
            .handle_input(b"HTTP/1.1 407 x\r\nProxy-Authenticate: Basic realm=\"r\"\r\n\r\n")
            .unwrap_err();
        assert!(
            matches!(
                e.error,
                ClientError::AuthRequired {
                    had_credentials: false,
                    ..
                }
            ),
            "{:?}",
            e.error
        );
        assert!(e.to_string().contains("no credentials"));
        let mut hs = ChainHandshake::new(
            vec![hop("p:1", Some(("u", "p")), false)],
            auth("t:443"),
            Headers::new(),
            1024,
        );
        hs.poll_transmit();
        let e = hs
            .handle_input(b"HTTP/1.1 407 x\r\nProxy-Authenticate: Negotiate\r\nProxy-Authenticate: Bearer realm=\"x\"\r\n\r\n")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "proxy p:1 (hop 1): proxy authentication required with schemes we do not support (Negotiate, Bearer)"
        );
    }

    /// MS-NLMP §4.2.4.3's CHALLENGE_MESSAGE, base64.
    const NTLM_CHALLENGE: &str = "TlRMTVNTUAACAAAADAAMADgAAAAzgoriASNFZ4mrze8AAAAAAAAAACQAJABEAAAABgBwFwAAAA9TAGUAcgB2AGUAcgACAAwARABvAG0AYQBpAG4AAQAMAFMAZQByAHYAZQByAAAAAAA=";

    fn auth_header(req: &str) -> &str {
        req.lines()
            .find_map(|l| l.strip_prefix("Proxy-Authorization: "))
            .unwrap_or("")
    }

    #[test]
    fn ntlm_keeps_the_connection() {
        let mut hs = ChainHandshake::with_entropy(
            vec![hop("p:1", Some(("DOM\\u", "pw")), false)],
            auth("t:443"),
            Headers::new(),
            4096,
            [1; 32],
            1_700_000_000,
        );
        assert_eq!(auth_header(&tx(&mut hs)), "");
        let p = hs
            .handle_input(b"HTTP/1.1 407 x\r\nProxy-Authenticate: NTLM\r\nProxy-Authenticate: Basic realm=\"r\"\r\nContent-Length: 3\r\n\r\nabc")
            .unwrap();
        assert_eq!(p.event, None);
        hs.handle_input(b"abc").unwrap();
        let t1 = tx(&mut hs);
        assert!(
            auth_header(&t1).starts_with("NTLM TlRMTVNTUAABAAAA"),
            "{t1}"
        );
        let reply = format!("HTTP/1.1 407 x\r\nProxy-Authenticate: NTLM {NTLM_CHALLENGE}\r\nContent-Length: 0\r\n\r\n");
        let p = hs.handle_input(reply.as_bytes()).unwrap();
        assert_eq!(p.event, None, "same connection");
        let t3 = tx(&mut hs);
        assert!(
            auth_header(&t3).starts_with("NTLM TlRMTVNTUAADAAAA"),
            "{t3}"
        );
        let p = hs.handle_input(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
        assert!(matches!(p.event, Some(Event::Established { .. })));

        // The challenge on a connection the proxy closes cannot be answered.
        let mut hs = ChainHandshake::new(
            vec![hop("p:1", Some(("u", "pw")), true)],
            auth("t:443"),
            Headers::new(),
            4096,
        );
        assert!(auth_header(&tx(&mut hs)).starts_with("Basic "));
        // Up-front Basic, but the proxy wants NTLM and closes: redial with
        // the negotiate message up front.
        let p = hs
            .handle_input(
                b"HTTP/1.1 407 x\r\nProxy-Authenticate: NTLM\r\nConnection: close\r\n\r\n",
            )
            .unwrap();
        assert_eq!(p.event, Some(Event::Reconnect));
        assert!(auth_header(&tx(&mut hs)).starts_with("NTLM TlRMTVNTUAABAAAA"));
        let reply = format!("HTTP/1.1 407 x\r\nProxy-Authenticate: NTLM {NTLM_CHALLENGE}\r\nConnection: close\r\n\r\n");
        let e = hs.handle_input(reply.as_bytes()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "proxy p:1 (hop 1): NTLM proxy authentication failed: the proxy closed the connection in the middle of the handshake"
        );
    }

    #[test]
    fn digest_on_redial_stale_and_memo() {
        let mut hs = ChainHandshake::with_entropy(
            vec![hop("p:1", Some(("u", "pw")), false)],
            auth("t:443"),
            Headers::new(),
            4096,
            [2; 32],
            0,
        );
        hs.poll_transmit();
        let p = hs
            .handle_input(b"HTTP/1.0 407 x\r\nProxy-Authenticate: Digest realm=\"r\", nonce=\"n1\", qop=\"auth\"\r\nProxy-Authenticate: Basic realm=\"r\"\r\n\r\n")
            .unwrap();
        assert_eq!(p.event, Some(Event::Reconnect));
        let r = tx(&mut hs);
        let v = auth_header(&r);
        assert!(
            v.starts_with("Digest username=\"u\", realm=\"r\", nonce=\"n1\", uri=\"t:443\""),
            "{v}"
        );
        assert!(v.ends_with("nc=00000001"), "{v}");
        // stale=true: answered again with the new nonce, same connection.
        let p = hs
            .handle_input(b"HTTP/1.1 407 x\r\nProxy-Authenticate: Digest realm=\"r\", nonce=\"n2\", qop=\"auth\", stale=true\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        assert_eq!(p.event, None);
        let r = tx(&mut hs);
        assert!(auth_header(&r).contains("nonce=\"n2\""), "{r}");
        hs.handle_input(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
        let memo = hs.memos().pop().unwrap().unwrap();
        // The next handshake sends the remembered nonce up front, nc 2.
        let mut h = hop("p:1", Some(("u", "pw")), false);
        h.memo = Some(memo);
        let mut hs = ChainHandshake::new(vec![h], auth("t:443"), Headers::new(), 4096);
        let r = tx(&mut hs);
        assert!(auth_header(&r).contains("nonce=\"n2\""), "{r}");
        assert!(auth_header(&r).ends_with("nc=00000002"), "{r}");
        // Wrong password: the same nonce again, not stale.
        let e = hs
            .handle_input(b"HTTP/1.1 407 x\r\nProxy-Authenticate: Digest realm=\"r\", nonce=\"n3\", qop=\"auth\"\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        // (A remembered nonce gets one fresh try first.)
        assert_eq!(e.event, None);
        assert!(auth_header(&tx(&mut hs)).contains("nonce=\"n3\""));
        let e = hs
            .handle_input(b"HTTP/1.1 407 x\r\nProxy-Authenticate: Digest realm=\"r\", nonce=\"n4\", qop=\"auth\"\r\nContent-Length: 0\r\n\r\n")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "proxy p:1 (hop 1): proxy authentication failed: Digest credentials refused (407)"
        );
    }

    #[test]
    fn error_statuses() {
        for (reply, want) in [
            (
                &b"HTTP/1.1 403 Forbidden\r\n\r\n"[..],
                ClientError::Denied {
                    status: 403,
                    reason: "Forbidden".into(),
                },
            ),
            (
                b"HTTP/1.1 502 Bad Gateway\r\n\r\n",
                ClientError::Upstream {
                    status: 502,
                    reason: "Bad Gateway".into(),
                },
            ),
            (
                b"HTTP/1.1 503 Service Unavailable\r\n\r\n",
                ClientError::Upstream {
                    status: 503,
                    reason: "Service Unavailable".into(),
                },
            ),
            (
                b"HTTP/1.0 504 Gateway Time-out\n\n",
                ClientError::Upstream {
                    status: 504,
                    reason: "Gateway Time-out".into(),
                },
            ),
            (
                b"HTTP/1.1 405 Method Not Allowed\r\n\r\n",
                ClientError::Status {
                    status: 405,
                    reason: "Method Not Allowed".into(),
                },
            ),
            (
                b"HTTP/1.1 101 Switching\r\n\r\n",
                ClientError::Status {
                    status: 101,
                    reason: "Switching".into(),
                },
            ),
            (
                b"HTTP/1.1 403 \x1b[31mred\r\n\r\n",
                ClientError::Malformed(HeadError::Malformed {
                    what: "invalid status code",
                }),
            ),
            (
                b"SSH-2.0-OpenSSH\r\n\r\n",
                ClientError::Malformed(HeadError::Malformed {
                    what: "invalid or unsupported HTTP version",
                }),
            ),
        ] {
            let mut hs = ChainHandshake::new(
                vec![hop("p:1", None, false)],
                auth("t:443"),
                Headers::new(),
                1024,
            );
            hs.poll_transmit();
            let e = hs.handle_input(reply).unwrap_err();
            assert_eq!(e.error, want);
        }
        let mut hs = ChainHandshake::new(
            vec![hop("p:1", None, false)],
            auth("t:443"),
            Headers::new(),
            16,
        );
        hs.poll_transmit();
        assert_eq!(
            hs.handle_input(b"HTTP/1.1 200 OK\r\nX-Long: aaaaaaaaaaa")
                .unwrap_err()
                .error,
            ClientError::Malformed(HeadError::TooLarge { limit: 16 })
        );
        let mut hs = ChainHandshake::new(
            vec![hop("p:1", None, false)],
            auth("t:443"),
            Headers::new(),
            16,
        );
        hs.poll_transmit();
        assert_eq!(hs.handle_eof().unwrap_err().error, ClientError::Closed);
    }

    #[test]
    fn chain_of_three() {
        let mut hs = ChainHandshake::new(
            vec![
                hop("p1:3128", None, false),
                hop("p2:8080", Some(("u2", "p2")), false),
                hop("[2001:db8::3]:3128", None, false),
            ],
            auth("vpn.example.com:443"),
            sstp_headers(),
            1024,
        );
        assert_eq!(hs.first_proxy(), &auth("p1:3128"));
        assert!(tx(&mut hs)
            .starts_with("CONNECT p2:8080 HTTP/1.1\r\nHost: p2:8080\r\nSSTPVERSION: 1.0\r\n"));
        let p = hs
            .handle_input(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .unwrap();
        assert_eq!(p.event, Some(Event::HopEstablished { hop: 0 }));
        assert_eq!(hs.current_hop(), 1);
        assert!(tx(&mut hs).starts_with("CONNECT [2001:db8::3]:3128 HTTP/1.1\r\n"));
        // Hop 2 wants auth and closes: redial hop 1 and redo hop 1 -> 2 with
        // credentials up front for hop 2 only.
        let p = hs
            .handle_input(b"HTTP/1.0 407 auth\r\nProxy-Authenticate: Basic realm=\"two\"\r\n\r\n")
            .unwrap();
        assert_eq!(p.event, Some(Event::Reconnect));
        assert_eq!(hs.current_hop(), 0);
        assert!(!tx(&mut hs).contains("Proxy-Authorization"));
        hs.handle_input(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
        let r = tx(&mut hs);
        assert!(r.contains("Proxy-Authorization: Basic dTI6cDI=\r\n"), "{r}");
        hs.handle_input(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
        assert!(tx(&mut hs).starts_with("CONNECT vpn.example.com:443 HTTP/1.1\r\nHost: vpn.example.com:443\r\nSSTPVERSION: 1.0\r\n\r\n"));
        let e = {
            let mut probe = ChainHandshake::new(
                vec![hop("x:1", None, false)],
                auth("t:443"),
                Headers::new(),
                64,
            );
            probe.poll_transmit();
            probe.handle_input(b"HTTP/1.1 502 x\r\n\r\n").unwrap_err()
        };
        assert_eq!(e.hop, 0);
        let p = hs.handle_input(b"HTTP/1.1 200 OK\r\n\r\nrest").unwrap();
        assert_eq!(p.consumed, 19);
        assert!(matches!(p.event, Some(Event::Established { .. })));
    }

    #[test]
    fn chain_error_names_the_hop() {
        let mut hs = ChainHandshake::new(
            vec![hop("p1:3128", None, false), hop("p2:3128", None, false)],
            auth("t:443"),
            Headers::new(),
            1024,
        );
        hs.poll_transmit();
        hs.handle_input(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
        hs.poll_transmit();
        let e = hs
            .handle_input(b"HTTP/1.1 403 Forbidden\r\n\r\n")
            .unwrap_err();
        assert_eq!(e.hop, 1);
        assert_eq!(e.proxy, auth("p2:3128"));
        assert_eq!(
            e.to_string(),
            "proxy p2:3128 (hop 2): tunnel refused by policy (403 Forbidden)"
        );
    }
}
