//! The NAS side of RADIUS as a sans-IO state machine.
//!
//! The caller owns UDP sockets and maps server indexes to addresses; the
//! client says what to send where ([`Client::poll_transmit`]: socket index,
//! server index, auth or accounting port), takes datagrams in
//! ([`Client::handle_datagram`]) and the time ([`Client::handle_timeout`],
//! [`Client::poll_timeout`]), and reports outcomes ([`Client::poll_event`]).
//!
//! * Identifiers (RFC 2865 §3): 256 per socket; when every identifier of
//!   every socket is in flight, a new socket index is used (the caller
//!   opens it on first sight), so a burst of logins never waits for one.
//! * Retransmission (RFC 5080 §2.2.1): the same bytes to the same server,
//!   `tries` times per server with doubling intervals that add up to
//!   `timeout`. A server that leaves a request unanswered that long is
//!   marked dead for `dead_time` and the request fails over to the next
//!   server (re-encoded with that server's secret and a new
//!   authenticator); servers are tried in order, live ones first. After the
//!   last server: [`Event::NoResponse`].
//! * A request pinned to one server ([`Request::server`]) never fails
//!   over: an Access-Request carrying the State of an Access-Challenge
//!   belongs to the server that issued it (RFC 2865 §5.24, RFC 3579
//!   §2.6.1); no other server knows that State, so when it is silent the
//!   outcome is [`Event::NoResponse`].
//! * A reply is accepted only from the server the request went to, for an
//!   identifier in flight on that socket, with the right Response
//!   Authenticator, and — for Access replies — a valid Message-Authenticator
//!   (BlastRADIUS). Anything else is dropped and counted ([`Counters`]).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::attr::{ms, MESSAGE_AUTHENTICATOR, USER_NAME, USER_PASSWORD};
use crate::crypto::{self, Secret, VerifyError};
use crate::packet::{Attr, Code, EncodeError, Packet};

/// How the client behaves; the servers are given by their secrets, in the
/// order they are tried (the index is what [`Transmit::server`] names).
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub secrets: Vec<Secret>,
    /// How long one server has for one request, all tries together.
    pub timeout: Duration,
    /// Sends per server (first send included), at least 1.
    pub tries: u32,
    /// How long a server that did not answer is passed over.
    pub dead_time: Duration,
}

/// Which of a server's ports a packet goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Port {
    Auth,
    Acct,
}

/// A request to send: code and attributes (identifier and authenticator
/// are the client's), and for Access-Request the User-Password in clear
/// (hidden per server at encoding).
#[derive(Clone, Debug)]
pub struct Request {
    pub packet: Packet,
    pub password: Option<Vec<u8>>,
    /// Only this server (index), no failover: see the module docs.
    pub server: Option<usize>,
}

impl Request {
    pub fn new(code: Code) -> Self {
        Request {
            packet: Packet::new(code, 0, [0; 16]),
            password: None,
            server: None,
        }
    }
    fn port(&self) -> Port {
        match self.packet.code {
            Code::AccessRequest => Port::Auth,
            _ => Port::Acct,
        }
    }
}

/// Names one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Handle(pub u64);

/// A datagram to send.
#[derive(Clone, Debug)]
pub struct Transmit {
    pub socket: usize,
    pub server: usize,
    pub port: Port,
    pub data: Vec<u8>,
}

/// A verified reply, with what decrypting its MS-MPPE keys needs.
#[derive(Clone, Debug)]
pub struct Reply {
    pub packet: Packet,
    request_authenticator: [u8; 16],
    secret: Secret,
}

impl Reply {
    /// Decrypts a salt-encrypted attribute value (RFC 2548 §2.4.2).
    pub fn decrypt(&self, value: &[u8]) -> Option<Vec<u8>> {
        crypto::salt_decrypt(value, &self.secret, &self.request_authenticator)
    }
    /// MS-MPPE-Send-Key and MS-MPPE-Recv-Key, decrypted (send, recv).
    pub fn mppe_keys(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        let send = self.decrypt(self.packet.vendor(ms::VENDOR, ms::MPPE_SEND_KEY)?)?;
        let recv = self.decrypt(self.packet.vendor(ms::VENDOR, ms::MPPE_RECV_KEY)?)?;
        Some((send, recv))
    }
}

/// What happened.
#[derive(Clone, Debug)]
pub enum Event {
    /// A verified reply to `handle` from `server`.
    Reply {
        handle: Handle,
        server: usize,
        reply: Reply,
    },
    /// No server answered.
    NoResponse { handle: Handle },
    /// A server left a request unanswered; it is passed over for `dead_time`.
    ServerDown { server: usize },
    /// A server marked down answered again.
    ServerUp { server: usize },
}

/// Datagrams and requests by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub requests: u64,
    pub retransmits: u64,
    pub replies: u64,
    pub no_response: u64,
    pub malformed: u64,
    pub unknown_identifier: u64,
    pub bad_authenticator: u64,
    pub bad_message_authenticator: u64,
}

impl Counters {
    /// Replies dropped for any reason.
    pub fn dropped(&self) -> u64 {
        self.malformed
            + self.unknown_identifier
            + self.bad_authenticator
            + self.bad_message_authenticator
    }
}

struct Pending {
    request: Request,
    socket: usize,
    id: u8,
    server: usize,
    tried: Vec<bool>,
    sends_left: u32,
    interval: Duration,
    next_at: Instant,
    authenticator: [u8; 16],
    bytes: Vec<u8>,
    /// The secret the bytes were made with (a reply is checked with it).
    secret: Secret,
}

/// Fills Request Authenticators (random bytes).
pub type Rng = Box<dyn FnMut(&mut [u8]) + Send>;

/// See the module docs.
pub struct Client {
    cfg: ClientConfig,
    rng: Rng,
    dead_until: Vec<Option<Instant>>,
    /// Per socket: the request holding each identifier.
    sockets: Vec<(Box<[Option<u64>; 256]>, u8)>,
    pending: HashMap<u64, Pending>,
    next_handle: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    counters: Counters,
}

impl Client {
    /// `rng` fills Request Authenticators and salts.
    pub fn new(mut cfg: ClientConfig, rng: Rng) -> Self {
        cfg.tries = cfg.tries.max(1);
        Client {
            dead_until: vec![None; cfg.secrets.len()],
            cfg,
            rng,
            sockets: Vec::new(),
            pending: HashMap::new(),
            next_handle: 1,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
        }
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Sockets the client uses (indexes below this).
    pub fn sockets(&self) -> usize {
        self.sockets.len()
    }

    /// True while `server` is passed over.
    pub fn is_dead(&self, now: Instant, server: usize) -> bool {
        self.dead_until
            .get(server)
            .copied()
            .flatten()
            .is_some_and(|t| t > now)
    }

    /// Replaces the servers' secrets (same servers, same order); requests
    /// in flight keep the secret they were sent with. False (nothing
    /// changed) for another number of secrets.
    pub fn set_secrets(&mut self, secrets: Vec<Secret>) -> bool {
        if secrets.len() != self.cfg.secrets.len() {
            return false;
        }
        self.cfg.secrets = secrets;
        true
    }

    /// Takes a new configuration (a reload): `map[old]` is the new index
    /// of each old server (None: removed). New requests use the new
    /// servers, timeouts and tries at once; a request in flight keeps its
    /// bytes and secret while its server stays, and fails over at once when
    /// its server was removed (a pinned one ends with
    /// [`Event::NoResponse`]). Hold-downs follow their servers.
    pub fn reconfigure(&mut self, now: Instant, mut cfg: ClientConfig, map: &[Option<usize>]) {
        cfg.tries = cfg.tries.max(1);
        let n = cfg.secrets.len();
        let moved = |old: usize| map.get(old).copied().flatten().filter(|&i| i < n);
        let mut dead = vec![None; n];
        for (old, d) in self.dead_until.iter().enumerate() {
            if let Some(i) = moved(old) {
                dead[i] = *d;
            }
        }
        self.dead_until = dead;
        self.cfg = cfg;
        let handles: Vec<u64> = self.pending.keys().copied().collect();
        for h in handles {
            let mut p = self.pending.remove(&h).expect("listed");
            let mut tried = vec![false; n];
            for (old, t) in p.tried.iter().enumerate() {
                if let (true, Some(i)) = (*t, moved(old)) {
                    tried[i] = true;
                }
            }
            let was_pinned = p.request.server.is_some();
            p.request.server = p.request.server.and_then(moved);
            match moved(p.server) {
                Some(i) => {
                    p.server = i;
                    if let Some(only) = p.request.server {
                        tried = (0..n).map(|k| k != only).collect();
                    }
                    p.tried = tried;
                    self.pending.insert(h, p);
                }
                None => {
                    p.tried = if was_pinned { vec![true; n] } else { tried };
                    // Its server is gone: the next one now.
                    p.sends_left = 0;
                    p.next_at = now;
                    p.server = usize::MAX;
                    self.pending.insert(h, p);
                }
            }
        }
        self.handle_timeout(now);
    }

    /// Starts a request; fails only if it cannot be encoded (too long).
    pub fn send(&mut self, now: Instant, request: Request) -> Result<Handle, EncodeError> {
        let n = self.cfg.secrets.len();
        // A pinned request counts every other server as tried already.
        let tried: Vec<bool> = match request.server {
            Some(only) => (0..n).map(|i| i != only).collect(),
            None => vec![false; n],
        };
        let Some(server) = self.pick(now, &tried) else {
            // No servers configured: nothing will answer.
            let h = Handle(self.next_handle);
            self.next_handle += 1;
            self.counters.no_response += 1;
            self.events.push_back(Event::NoResponse { handle: h });
            return Ok(h);
        };
        let (socket, id) = self.allocate_id();
        let handle = self.next_handle;
        let mut p = Pending {
            request,
            socket,
            id,
            server,
            tried,
            sends_left: 0,
            interval: Duration::ZERO,
            next_at: now,
            authenticator: [0; 16],
            bytes: Vec::new(),
            secret: self.cfg.secrets[server].clone(),
        };
        if let Err(e) = self.encode(&mut p) {
            self.sockets[socket].0[usize::from(id)] = None;
            return Err(e);
        }
        self.next_handle += 1;
        self.sockets[socket].0[usize::from(id)] = Some(handle);
        self.counters.requests += 1;
        self.start_server(now, &mut p);
        self.pending.insert(handle, p);
        Ok(Handle(handle))
    }

    /// Forgets a request (its answer is no longer wanted).
    pub fn cancel(&mut self, h: Handle) {
        if let Some(p) = self.pending.remove(&h.0) {
            self.sockets[p.socket].0[usize::from(p.id)] = None;
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.next_at).min()
    }

    /// Retransmits what is due and fails over what has run out of tries.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.next_at <= now)
            .map(|(h, _)| *h)
            .collect();
        for h in due {
            let mut p = self.pending.remove(&h).expect("listed");
            if p.sends_left > 0 {
                self.counters.retransmits += 1;
                self.transmit(now, &mut p);
                self.pending.insert(h, p);
                continue;
            }
            // This server had its chance (usize::MAX: removed by a reload).
            if let Some(t) = p.tried.get_mut(p.server) {
                *t = true;
            }
            if p.server < self.dead_until.len() && !self.is_dead(now, p.server) {
                self.dead_until[p.server] = Some(now + self.cfg.dead_time);
                self.events
                    .push_back(Event::ServerDown { server: p.server });
            }
            match self.pick(now, &p.tried) {
                Some(next) => {
                    p.server = next;
                    // The request encoded once already: it fits.
                    let _ = self.encode(&mut p);
                    self.start_server(now, &mut p);
                    self.pending.insert(h, p);
                }
                None => {
                    self.sockets[p.socket].0[usize::from(p.id)] = None;
                    self.counters.no_response += 1;
                    self.events
                        .push_back(Event::NoResponse { handle: Handle(h) });
                }
            }
        }
    }

    /// A datagram that arrived on `socket` from `server` (None: from an
    /// address that is no configured server's).
    pub fn handle_datagram(
        &mut self,
        _now: Instant,
        socket: usize,
        server: Option<usize>,
        data: &[u8],
    ) {
        if data.len() < crate::packet::HEADER_LEN {
            self.counters.malformed += 1;
            return;
        }
        let id = usize::from(data[1]);
        let found = self
            .sockets
            .get(socket)
            .and_then(|s| s.0[id])
            .filter(|h| server.is_some_and(|s| self.pending[h].server == s));
        let Some(h) = found else {
            self.counters.unknown_identifier += 1;
            return;
        };
        let p = &self.pending[&h];
        let secret = p.secret.clone();
        let access = p.request.packet.code == Code::AccessRequest;
        let packet = match crypto::verify_reply(data, &p.authenticator, &secret, access) {
            Ok(packet) => packet,
            Err(VerifyError::Malformed(_)) => {
                self.counters.malformed += 1;
                return;
            }
            Err(VerifyError::BadAuthenticator) => {
                self.counters.bad_authenticator += 1;
                return;
            }
            Err(_) => {
                self.counters.bad_message_authenticator += 1;
                return;
            }
        };
        let fits = match p.request.packet.code {
            Code::AccessRequest => packet.code.is_access_reply(),
            Code::AccountingRequest => packet.code == Code::AccountingResponse,
            _ => true,
        };
        if !fits {
            self.counters.malformed += 1;
            return;
        }
        let p = self.pending.remove(&h).expect("found");
        self.sockets[p.socket].0[usize::from(p.id)] = None;
        if self.dead_until[p.server].take().is_some() {
            self.events.push_back(Event::ServerUp { server: p.server });
        }
        self.counters.replies += 1;
        self.events.push_back(Event::Reply {
            handle: Handle(h),
            server: p.server,
            reply: Reply {
                packet,
                request_authenticator: p.authenticator,
                secret,
            },
        });
    }

    /// The next server for a request: the first untried live one in order,
    /// else the untried dead one that comes back soonest.
    fn pick(&self, now: Instant, tried: &[bool]) -> Option<usize> {
        let untried = (0..self.cfg.secrets.len()).filter(|&i| !tried[i]);
        untried
            .clone()
            .find(|&i| !self.is_dead(now, i))
            .or_else(|| untried.min_by_key(|&i| self.dead_until[i]))
    }

    fn allocate_id(&mut self) -> (usize, u8) {
        for (si, (slots, next)) in self.sockets.iter_mut().enumerate() {
            for k in 0..256 {
                let id = next.wrapping_add(k as u8);
                if slots[usize::from(id)].is_none() {
                    *next = id.wrapping_add(1);
                    return (si, id);
                }
            }
        }
        self.sockets.push((Box::new([None; 256]), 1));
        (self.sockets.len() - 1, 0)
    }

    fn encode(&mut self, p: &mut Pending) -> Result<(), EncodeError> {
        let secret = &self.cfg.secrets[p.server];
        p.secret = secret.clone();
        let mut pkt = p.request.packet.clone();
        pkt.identifier = p.id;
        pkt.attrs.retain(|a| a.typ != MESSAGE_AUTHENTICATOR);
        if pkt.code == Code::AccessRequest {
            (self.rng)(&mut pkt.authenticator);
            if let Some(pw) = &p.request.password {
                let hidden = crypto::hide_password(pw, secret, &pkt.authenticator);
                let at = pkt
                    .attrs
                    .iter()
                    .position(|a| a.typ == USER_NAME)
                    .map_or(0, |i| i + 1);
                pkt.attrs.insert(
                    at,
                    Attr {
                        typ: USER_PASSWORD,
                        value: hidden,
                    },
                );
            }
        }
        p.bytes = crypto::encode_request(&pkt, secret, false)?;
        p.authenticator = p.bytes[4..20].try_into().expect("16 bytes");
        Ok(())
    }

    fn start_server(&mut self, now: Instant, p: &mut Pending) {
        let parts = (1u32 << self.cfg.tries.min(16)) - 1;
        p.interval = self.cfg.timeout / parts;
        p.sends_left = self.cfg.tries;
        self.transmit(now, p);
    }

    fn transmit(&mut self, now: Instant, p: &mut Pending) {
        if p.sends_left < self.cfg.tries {
            p.interval *= 2;
        }
        p.sends_left -= 1;
        p.next_at = now + p.interval;
        self.transmits.push_back(Transmit {
            socket: p.socket,
            server: p.server,
            port: p.request.port(),
            data: p.bytes.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr;

    fn client(n: usize) -> Client {
        let mut ctr = 0u8;
        Client::new(
            ClientConfig {
                secrets: (0..n).map(|i| Secret::new(format!("secret{i}"))).collect(),
                timeout: Duration::from_millis(700),
                tries: 3,
                dead_time: Duration::from_secs(30),
            },
            Box::new(move |b: &mut [u8]| {
                ctr = ctr.wrapping_add(1);
                b.fill(ctr);
            }),
        )
    }

    fn access(user: &str) -> Request {
        let mut r = Request::new(Code::AccessRequest);
        r.packet.push(attr::USER_NAME, user);
        r.password = Some(b"pw".to_vec());
        r
    }

    /// What a server does: checks the request, answers with `code` (and
    /// MPPE keys for an accept).
    fn answer(t: &Transmit, code: Code, secret: &str) -> Vec<u8> {
        answer_signed(t, code, secret, secret)
    }

    fn answer_signed(t: &Transmit, code: Code, secret: &str, sign: &str) -> Vec<u8> {
        let req =
            crypto::verify_access_request(&t.data, &Secret::new(secret)).expect("valid request");
        let pw = crypto::unhide_password(
            req.get(attr::USER_PASSWORD).unwrap(),
            &Secret::new(secret),
            &req.authenticator,
        );
        let s = Secret::new(sign);
        assert_eq!(pw.as_deref(), Some(&b"pw"[..]));
        let mut r = Packet::new(code, req.identifier, [0; 16]);
        if code == Code::AccessAccept {
            r.push_vendor(
                ms::VENDOR,
                ms::MPPE_SEND_KEY,
                &crypto::salt_encrypt(&[1; 16], &s, &req.authenticator, [1, 2]),
            );
            r.push_vendor(
                ms::VENDOR,
                ms::MPPE_RECV_KEY,
                &crypto::salt_encrypt(&[2; 16], &s, &req.authenticator, [3, 4]),
            );
        }
        crypto::encode_reply(&r, &req.authenticator, &s).unwrap()
    }

    #[test]
    fn accept_with_keys() {
        let now = Instant::now();
        let mut c = client(1);
        let h = c.send(now, access("alice")).unwrap();
        let t = c.poll_transmit().unwrap();
        assert_eq!((t.socket, t.server, t.port), (0, 0, Port::Auth));
        c.handle_datagram(now, 0, Some(0), &answer(&t, Code::AccessAccept, "secret0"));
        match c.poll_event() {
            Some(Event::Reply { handle, reply, .. }) => {
                assert_eq!(handle, h);
                assert_eq!(reply.packet.code, Code::AccessAccept);
                assert_eq!(reply.mppe_keys(), Some((vec![1; 16], vec![2; 16])));
            }
            e => panic!("{e:?}"),
        }
        assert_eq!(c.in_flight(), 0);
        assert_eq!(c.poll_timeout(), None);
        // The same reply again: its identifier is no longer in flight.
        c.handle_datagram(now, 0, Some(0), &answer(&t, Code::AccessAccept, "secret0"));
        assert_eq!(c.counters().unknown_identifier, 1);
        assert!(c.poll_event().is_none());
    }

    #[test]
    fn forged_and_stray_replies_are_dropped_and_counted() {
        let now = Instant::now();
        let mut c = client(1);
        c.send(now, access("alice")).unwrap();
        let t = c.poll_transmit().unwrap();
        // Wrong secret: the Response Authenticator does not verify.
        c.handle_datagram(
            now,
            0,
            Some(0),
            &answer_signed(&t, Code::AccessAccept, "secret0", "secret0-"),
        );
        // No Message-Authenticator, right Response Authenticator.
        let s = Secret::new("secret0");
        let req = Packet::parse(&t.data).unwrap();
        let mut b = Vec::new();
        Packet::new(Code::AccessAccept, req.identifier, req.authenticator)
            .emit(&mut b)
            .unwrap();
        let mut m = md5::Md5::default();
        md5::Digest::update(&mut m, &b);
        md5::Digest::update(&mut m, s.as_bytes());
        let a: [u8; 16] = md5::Digest::finalize(m).into();
        b[4..20].copy_from_slice(&a);
        c.handle_datagram(now, 0, Some(0), &b);
        // From another address, on another socket, too short.
        let good = answer(&t, Code::AccessAccept, "secret0");
        c.handle_datagram(now, 0, None, &good);
        c.handle_datagram(now, 1, Some(0), &good);
        c.handle_datagram(now, 0, Some(0), &good[..10]);
        let k = c.counters();
        assert_eq!(k.bad_authenticator, 1);
        assert_eq!(k.bad_message_authenticator, 1);
        assert_eq!(k.unknown_identifier, 2);
        assert_eq!(k.malformed, 1);
        assert_eq!(k.dropped(), 5);
        assert!(c.poll_event().is_none());
        c.handle_datagram(now, 0, Some(0), &good);
        assert!(matches!(c.poll_event(), Some(Event::Reply { .. })));
    }

    #[test]
    fn retransmit_back_off_failover_and_hold_down() {
        let t0 = Instant::now();
        let mut c = client(2);
        let h = c.send(t0, access("a")).unwrap();
        let first = c.poll_transmit().unwrap();
        assert_eq!(first.server, 0);
        // 700 ms in 3 tries: 100, 200, 400 ms.
        let mut at = t0;
        let mut gaps = Vec::new();
        for _ in 0..2 {
            let next = c.poll_timeout().unwrap();
            gaps.push(next - at);
            at = next;
            c.handle_timeout(at);
            let t = c.poll_transmit().unwrap();
            assert_eq!(t.data, first.data, "a retransmission is the same bytes");
        }
        let next = c.poll_timeout().unwrap();
        gaps.push(next - at);
        assert_eq!(gaps, [100, 200, 400].map(Duration::from_millis));
        c.handle_timeout(next);
        assert!(matches!(
            c.poll_event(),
            Some(Event::ServerDown { server: 0 })
        ));
        let t = c.poll_transmit().unwrap();
        assert_eq!(t.server, 1);
        assert_ne!(t.data, first.data, "re-encoded for the other secret");
        assert!(c.is_dead(next, 0));
        // A new request goes straight to the live server.
        c.send(next, access("b")).unwrap();
        assert_eq!(c.poll_transmit().unwrap().server, 1);
        c.handle_datagram(
            next,
            t.socket,
            Some(1),
            &answer(&t, Code::AccessReject, "secret1"),
        );
        match c.poll_event() {
            Some(Event::Reply {
                handle,
                server: 1,
                reply,
            }) => {
                assert_eq!(handle, h);
                assert_eq!(reply.packet.code, Code::AccessReject);
            }
            e => panic!("{e:?}"),
        }
        // Everything silent: NoResponse after both servers' timeouts.
        let mut now = next;
        while let Some(d) = c.poll_timeout() {
            now = d;
            c.handle_timeout(now);
        }
        while c.poll_transmit().is_some() {}
        let evs: Vec<_> = std::iter::from_fn(|| c.poll_event()).collect();
        assert!(
            matches!(
                evs[..],
                [Event::ServerDown { server: 1 }, Event::NoResponse { .. }]
            ),
            "{evs:?}"
        );
        assert_eq!(c.counters().no_response, 1);
        // Both dead: a request still tries the one back first, and its
        // answer brings it up.
        c.send(now, access("c")).unwrap();
        let t = c.poll_transmit().unwrap();
        assert_eq!(t.server, 0);
        c.handle_datagram(
            now,
            t.socket,
            Some(0),
            &answer(&t, Code::AccessAccept, "secret0"),
        );
        assert!(matches!(
            c.poll_event(),
            Some(Event::ServerUp { server: 0 })
        ));
        assert!(!c.is_dead(now, 0));
    }

    #[test]
    fn a_pinned_request_never_fails_over() {
        let t0 = Instant::now();
        let mut c = client(2);
        // Server 1 issued the State: the follow-up goes there only, also
        // while server 0 is alive.
        let mut r = access("eap");
        r.server = Some(1);
        let h = c.send(t0, r.clone()).unwrap();
        let t = c.poll_transmit().unwrap();
        assert_eq!(t.server, 1);
        // Server 1 dies mid-exchange: its tries run out, and the request
        // is not sent to server 0, which never saw the State.
        let mut now = t0;
        let mut servers = vec![t.server];
        while let Some(d) = c.poll_timeout() {
            now = d;
            c.handle_timeout(now);
            while let Some(t) = c.poll_transmit() {
                servers.push(t.server);
            }
        }
        assert_eq!(servers, [1, 1, 1], "three tries, all to server 1");
        let evs: Vec<_> = std::iter::from_fn(|| c.poll_event()).collect();
        assert!(
            matches!(
                evs[..],
                [Event::ServerDown { server: 1 }, Event::NoResponse { handle }] if handle == h
            ),
            "{evs:?}"
        );
        // Pinned to a server marked dead: still that one (nobody else can
        // answer), and an unpinned request goes to the live one.
        c.send(now, r).unwrap();
        assert_eq!(c.poll_transmit().unwrap().server, 1);
        c.send(now, access("new")).unwrap();
        assert_eq!(c.poll_transmit().unwrap().server, 0);
        // A pin to a server that does not exist: no answer, nothing sent.
        let mut r = access("gone");
        r.server = Some(7);
        let h = c.send(now, r).unwrap();
        assert!(c.poll_transmit().is_none());
        assert!(matches!(c.poll_event(), Some(Event::NoResponse { handle }) if handle == h));
    }

    #[test]
    fn reconfigure_moves_requests_with_their_servers() {
        let t0 = Instant::now();
        let mut c = client(2);
        let mut pinned = access("pinned");
        pinned.server = Some(1);
        let hp = c.send(t0, pinned).unwrap();
        let on1 = c.poll_transmit().unwrap();
        let h0 = c.send(t0, access("a")).unwrap();
        let on0 = c.poll_transmit().unwrap();
        assert_eq!((on1.server, on0.server), (1, 0));
        // New list: old server 1 first, then a new one; old server 0 gone.
        let cfg = ClientConfig {
            secrets: vec![Secret::new("secret1"), Secret::new("secret-new")],
            timeout: Duration::from_millis(700),
            tries: 1,
            dead_time: Duration::from_secs(30),
        };
        c.reconfigure(t0, cfg, &[None, Some(0)]);
        // The request on the removed server fails over at once to the
        // first server of the new list.
        let t = c.poll_transmit().unwrap();
        assert_eq!(t.server, 0);
        assert!(crypto::verify_access_request(&t.data, &Secret::new("secret1")).is_ok());
        assert!(c.poll_transmit().is_none());
        // The pinned one kept its server (now index 0) and its bytes: the
        // old server answers it.
        c.handle_datagram(
            t0,
            on1.socket,
            Some(0),
            &answer(&on1, Code::AccessAccept, "secret1"),
        );
        assert!(
            matches!(c.poll_event(), Some(Event::Reply { handle, server: 0, .. }) if handle == hp)
        );
        c.handle_datagram(
            t0,
            t.socket,
            Some(0),
            &answer(&t, Code::AccessReject, "secret1"),
        );
        assert!(matches!(c.poll_event(), Some(Event::Reply { handle, .. }) if handle == h0));
        // New requests use the new tries (1): one send, then the next server.
        c.send(t0, access("b")).unwrap();
        assert_eq!(c.poll_transmit().unwrap().server, 0);
        let d = c.poll_timeout().unwrap();
        c.handle_timeout(d);
        assert_eq!(c.poll_transmit().unwrap().server, 1);
        // A pinned request whose server is removed ends without an answer.
        let mut r = access("p2");
        r.server = Some(1);
        let h = c.send(d, r).unwrap();
        while c.poll_transmit().is_some() {}
        while c.poll_event().is_some() {}
        c.reconfigure(
            d,
            ClientConfig {
                secrets: vec![Secret::new("secret1")],
                timeout: Duration::from_millis(700),
                tries: 1,
                dead_time: Duration::from_secs(30),
            },
            &[Some(0), None],
        );
        assert!(
            c.poll_transmit().is_none(),
            "not sent to a server without its State"
        );
        let evs: Vec<_> = std::iter::from_fn(|| c.poll_event()).collect();
        // ("b", on the removed server after server 0 failed it, too.)
        assert_eq!(evs.len(), 2, "{evs:?}");
        assert!(
            evs.iter()
                .any(|e| matches!(e, Event::NoResponse { handle } if *handle == h)),
            "{evs:?}"
        );
    }

    #[test]
    fn new_secrets_for_new_requests_old_ones_for_those_in_flight() {
        let now = Instant::now();
        let mut c = client(1);
        c.send(now, access("a")).unwrap();
        let old = c.poll_transmit().unwrap();
        assert!(!c.set_secrets(vec![]), "wrong count refused");
        assert!(c.set_secrets(vec![Secret::new("rotated")]));
        c.send(now, access("b")).unwrap();
        let new = c.poll_transmit().unwrap();
        assert!(crypto::verify_access_request(&new.data, &Secret::new("rotated")).is_ok());
        c.handle_datagram(
            now,
            0,
            Some(0),
            &answer(&old, Code::AccessAccept, "secret0"),
        );
        c.handle_datagram(
            now,
            0,
            Some(0),
            &answer(&new, Code::AccessReject, "rotated"),
        );
        assert_eq!(c.counters().replies, 2);
    }

    #[test]
    fn more_sockets_when_identifiers_run_out() {
        let now = Instant::now();
        let mut c = client(1);
        let mut seen = std::collections::HashSet::new();
        for i in 0..600 {
            c.send(now, access(&format!("u{i}"))).unwrap();
            let t = c.poll_transmit().unwrap();
            assert!(
                seen.insert((t.socket, t.data[1])),
                "identifier reused while in flight"
            );
        }
        assert_eq!(c.sockets(), 3);
        // Answer one on socket 1; its identifier is the next one reused.
        let hs: Vec<_> = (0..3).collect();
        assert_eq!(hs.len(), c.sockets());
        c.cancel(Handle(300));
        c.send(now, access("again")).unwrap();
        let t = c.poll_transmit().unwrap();
        assert_eq!(t.socket, 1);
        assert_eq!(c.sockets(), 3);
    }

    #[test]
    fn accounting_goes_to_the_accounting_port() {
        let now = Instant::now();
        let mut c = client(1);
        let mut r = Request::new(Code::AccountingRequest);
        r.packet
            .push_u32(attr::ACCT_STATUS_TYPE, attr::status::START);
        c.send(now, r).unwrap();
        let t = c.poll_transmit().unwrap();
        assert_eq!(t.port, Port::Acct);
        let s = Secret::new("secret0");
        let req = crypto::verify_request(&t.data, &s, false).unwrap();
        // FreeRADIUS sends Accounting-Response without Message-Authenticator.
        let mut b = Vec::new();
        Packet::new(Code::AccountingResponse, req.identifier, req.authenticator)
            .emit(&mut b)
            .unwrap();
        let mut m = md5::Md5::default();
        md5::Digest::update(&mut m, &b);
        md5::Digest::update(&mut m, s.as_bytes());
        let a: [u8; 16] = md5::Digest::finalize(m).into();
        b[4..20].copy_from_slice(&a);
        c.handle_datagram(now, 0, Some(0), &b);
        assert!(matches!(c.poll_event(), Some(Event::Reply { .. })));
    }
}
