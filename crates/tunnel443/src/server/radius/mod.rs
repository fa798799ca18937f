//! RADIUS for the server: one tokio task owns the UDP sockets and drives
//! the sans-IO [`radius::Client`] (identifiers, retransmission, failover,
//! hold-down); sessions hand it requests and await the outcome, so a slow
//! or dead RADIUS server never blocks anything but the logins waiting for
//! it. [`auth`] turns PPP proofs into Access-Requests and replies into
//! verdicts and authorization.

pub mod acct;
pub mod auth;
pub mod dae;
pub mod eap;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use radius::{Client, ClientConfig, Counters, Event, Handle, Port};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use crate::config::RadiusSettings;

/// What became of a request.
#[derive(Debug)]
pub enum Outcome {
    /// A verified reply.
    Reply(radius::Reply),
    /// No server answered within the timeouts (or the request could not
    /// be encoded; logged).
    NoResponse,
}

enum Cmd {
    Ask {
        request: radius::Request,
        done: oneshot::Sender<Outcome>,
    },
    /// A reloaded configuration (SIGHUP, `ctl reload`).
    Reconfigure(Arc<RadiusSettings>),
}

/// A handle on the RADIUS task; clone freely.
#[derive(Clone)]
pub struct Radius {
    tx: mpsc::UnboundedSender<Cmd>,
    /// The configuration now in effect (replaced by a reload).
    settings: Arc<watch::Sender<Arc<RadiusSettings>>>,
    /// Class and interim interval per session, for accounting.
    pub extras: Arc<acct::ExtrasTable>,
    /// Sessions a CoA-Request can change.
    pub controls: Arc<dae::Controls>,
    /// The client's counters after the task's last step (`ctl stats`,
    /// `/metrics`).
    counters: Arc<std::sync::Mutex<Counters>>,
}

impl Radius {
    /// Starts the task (sockets are opened when first needed).
    pub fn start(settings: RadiusSettings) -> Self {
        let settings = Arc::new(settings);
        let (tx, rx) = mpsc::unbounded_channel();
        let counters = Arc::<std::sync::Mutex<Counters>>::default();
        crate::tasks::spawn(run(settings.clone(), rx, counters.clone()));
        Radius {
            tx,
            settings: Arc::new(watch::Sender::new(settings)),
            extras: Arc::default(),
            controls: Arc::default(),
            counters,
        }
    }

    /// Requests, replies, timeouts and dropped replies so far.
    pub fn counters(&self) -> Counters {
        *self.counters.lock().expect("RADIUS counters lock")
    }

    /// The configuration now in effect.
    pub fn settings(&self) -> Arc<RadiusSettings> {
        self.settings.borrow().clone()
    }

    /// Follows the configuration (the DAE listener rebinds on a change).
    pub fn watch(&self) -> watch::Receiver<Arc<RadiusSettings>> {
        self.settings.subscribe()
    }

    /// Takes a reloaded `[radius]` section (its secrets read already):
    /// new requests use it; requests in flight stay with their server
    /// while it is still listed ([`radius::Client::reconfigure`]). Refused,
    /// naming the field, for what only a restart can change.
    pub fn reconfigure(&self, new: RadiusSettings) -> anyhow::Result<()> {
        let old = self.settings();
        if new.accounting != old.accounting {
            anyhow::bail!("radius.accounting: turning accounting on or off needs a restart");
        }
        let v6 = |s: &RadiusSettings| s.servers.iter().any(|s| s.auth.is_ipv6());
        if v6(&new) && !v6(&old) {
            anyhow::bail!(
                "radius.servers: the first IPv6 server needs a restart (the RADIUS sockets are IPv4)"
            );
        }
        let new = Arc::new(new);
        self.tx
            .send(Cmd::Reconfigure(new.clone()))
            .map_err(|_| anyhow::anyhow!("the RADIUS task is gone"))?;
        self.settings.send_replace(new);
        Ok(())
    }

    /// Sends a request and waits for its outcome.
    pub async fn ask(&self, request: radius::Request) -> Outcome {
        let (done, rx) = oneshot::channel();
        if self.tx.send(Cmd::Ask { request, done }).is_err() {
            return Outcome::NoResponse;
        }
        rx.await.unwrap_or(Outcome::NoResponse)
    }
}

/// Which server issued each State of an Access-Challenge (RFC 2865
/// §5.24): the Access-Request that echoes it goes to that server only
/// (RFC 3579 §2.6.1), by address so that a reload that reorders the
/// servers keeps it. Entries are forgotten when used and after
/// [`StatePins::TTL`] (an exchange the peer abandoned).
#[derive(Default)]
struct StatePins(HashMap<Vec<u8>, (SocketAddr, Instant)>);

impl StatePins {
    /// Longer than any EAP round trip of a live peer.
    const TTL: std::time::Duration = std::time::Duration::from_secs(120);

    fn issued(&mut self, now: Instant, state: &[u8], server: SocketAddr) {
        self.0
            .retain(|_, (_, at)| now.duration_since(*at) < Self::TTL);
        self.0.insert(state.to_vec(), (server, now));
    }

    /// The server a request carrying `state` must go to (None: a State we
    /// did not see issued, or forgotten).
    fn take(&mut self, now: Instant, state: &[u8]) -> Option<SocketAddr> {
        self.0
            .remove(state)
            .filter(|(_, at)| now.duration_since(*at) < Self::TTL)
            .map(|(s, _)| s)
    }
}

/// Pins an Access-Request that carries a State to the server that issued
/// it; `None` when that server is unknown (the request cannot be
/// answered by anyone, logged).
fn pin(
    pins: &mut StatePins,
    settings: &RadiusSettings,
    now: Instant,
    mut request: radius::Request,
) -> Option<radius::Request> {
    if request.packet.code != radius::Code::AccessRequest {
        return Some(request);
    }
    let Some(state) = request.packet.get(radius::attr::STATE).map(<[u8]>::to_vec) else {
        return Some(request);
    };
    let at = pins.take(now, &state);
    let index = at.and_then(|a| settings.servers.iter().position(|s| s.auth == a));
    match index {
        Some(i) => {
            request.server = Some(i);
            Some(request)
        }
        None => {
            warn!(
                server = %at.map(|a| a.to_string()).unwrap_or_else(|| "unknown".into()),
                "EAP exchange refused: the RADIUS server that issued its State is no longer configured or the State expired"
            );
            None
        }
    }
}

/// The address a server is known by, whatever socket family it came in on.
fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

struct Io {
    v6: bool,
    sockets: Vec<Arc<UdpSocket>>,
    datagrams: mpsc::Sender<(usize, SocketAddr, Vec<u8>)>,
}

impl Io {
    async fn socket(&mut self, i: usize) -> std::io::Result<Arc<UdpSocket>> {
        while self.sockets.len() <= i {
            let bind: SocketAddr = if self.v6 {
                (Ipv6Addr::UNSPECIFIED, 0).into()
            } else {
                ([0, 0, 0, 0], 0).into()
            };
            let s = Arc::new(UdpSocket::bind(bind).await?);
            let index = self.sockets.len();
            debug!(socket = index, local = %s.local_addr()?, "RADIUS socket opened");
            crate::tasks::spawn(read_socket(s.clone(), index, self.datagrams.clone()));
            self.sockets.push(s);
        }
        Ok(self.sockets[i].clone())
    }

    fn target(&self, a: SocketAddr) -> SocketAddr {
        match (self.v6, a.ip()) {
            (true, IpAddr::V4(v4)) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), a.port()),
            _ => a,
        }
    }
}

async fn read_socket(
    s: Arc<UdpSocket>,
    index: usize,
    tx: mpsc::Sender<(usize, SocketAddr, Vec<u8>)>,
) {
    let mut buf = vec![0u8; 4096];
    loop {
        match s.recv_from(&mut buf).await {
            Ok((n, from)) => {
                if tx.send((index, from, buf[..n].to_vec())).await.is_err() {
                    return;
                }
            }
            // ICMP port unreachable surfaces here on Linux: not fatal.
            Err(e) => debug!(error = %e, "RADIUS socket read failed"),
        }
    }
}

/// Logs what a datagram that was not accepted was dropped for.
fn log_drop(before: Counters, after: Counters, from: SocketAddr) {
    let reason = if after.bad_message_authenticator > before.bad_message_authenticator {
        "a missing or wrong Message-Authenticator"
    } else if after.bad_authenticator > before.bad_authenticator {
        "a wrong Response Authenticator (is the secret the same on both sides?)"
    } else if after.unknown_identifier > before.unknown_identifier {
        "no request in flight with its identifier from that address"
    } else if after.malformed > before.malformed {
        "malformed or not a reply to the request"
    } else {
        return;
    };
    warn!(from = %from, reason = %reason, dropped = after.dropped(), "RADIUS reply dropped");
}

fn client_config(s: &RadiusSettings) -> ClientConfig {
    ClientConfig {
        secrets: s.servers.iter().map(|s| s.secret.clone()).collect(),
        timeout: s.timeout,
        tries: s.tries,
        dead_time: s.dead_time,
    }
}

async fn run(
    mut settings: Arc<RadiusSettings>,
    mut rx: mpsc::UnboundedReceiver<Cmd>,
    counters: Arc<std::sync::Mutex<Counters>>,
) {
    let mut client = Client::new(
        client_config(&settings),
        Box::new(|b: &mut [u8]| rand::fill(b)),
    );
    let (dg_tx, mut dg_rx) = mpsc::channel(1024);
    let mut io = Io {
        v6: settings.servers.iter().any(|s| s.auth.is_ipv6()),
        sockets: Vec::new(),
        datagrams: dg_tx,
    };
    let mut waiting: HashMap<Handle, oneshot::Sender<Outcome>> = HashMap::new();
    let mut pins = StatePins::default();
    // Requests pinned to a server, for the log line when it is silent.
    let mut pinned: HashMap<Handle, SocketAddr> = HashMap::new();
    loop {
        *counters.lock().expect("RADIUS counters lock") = client.counters();
        while let Some(t) = client.poll_transmit() {
            let srv = &settings.servers[t.server];
            let dest = io.target(match t.port {
                Port::Auth => srv.auth,
                Port::Acct => srv.acct,
            });
            match io.socket(t.socket).await {
                Ok(s) => {
                    if let Err(e) = s.send_to(&t.data, dest).await {
                        debug!(server = %dest, error = %e, "RADIUS send failed");
                    }
                }
                Err(e) => warn!(error = %e, "opening a RADIUS socket failed"),
            }
        }
        while let Some(ev) = client.poll_event() {
            match ev {
                Event::Reply {
                    handle,
                    server,
                    reply,
                } => {
                    pinned.remove(&handle);
                    if reply.packet.code == radius::Code::AccessChallenge {
                        if let Some(state) = reply.packet.get(radius::attr::STATE) {
                            pins.issued(Instant::now(), state, settings.servers[server].auth);
                        }
                    }
                    if let Some(w) = waiting.remove(&handle) {
                        let _ = w.send(Outcome::Reply(reply));
                    }
                }
                Event::NoResponse { handle } => {
                    if let Some(server) = pinned.remove(&handle) {
                        warn!(
                            server = %server,
                            "RADIUS server of an EAP exchange stopped answering; the other servers never saw its State, so the login fails"
                        );
                    }
                    if let Some(w) = waiting.remove(&handle) {
                        let _ = w.send(Outcome::NoResponse);
                    }
                }
                Event::ServerDown { server } => warn!(
                    server = %settings.servers[server].auth.ip(),
                    timeout_s = settings.timeout.as_secs(),
                    dead_time_s = settings.dead_time.as_secs(),
                    "RADIUS server not answering; passed over for dead_time"
                ),
                Event::ServerUp { server } => info!(
                    server = %settings.servers[server].auth.ip(),
                    "RADIUS server answering again"
                ),
            }
        }
        let deadline = client.poll_timeout();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            cmd = rx.recv() => {
                match cmd {
                    None => return,
                    Some(Cmd::Reconfigure(new)) => {
                        // Servers are known by their authentication address.
                        let map: Vec<Option<usize>> = settings
                            .servers
                            .iter()
                            .map(|old| new.servers.iter().position(|s| s.auth == old.auth))
                            .collect();
                        client.reconfigure(Instant::now(), client_config(&new), &map);
                        settings = new;
                    }
                    Some(Cmd::Ask { done, .. }) if done.is_closed() => {}
                    Some(Cmd::Ask { request, done }) => {
                        let Some(request) = pin(&mut pins, &settings, Instant::now(), request) else {
                            let _ = done.send(Outcome::NoResponse);
                            continue;
                        };
                        let only = request.server;
                        match client.send(Instant::now(), request) {
                        Ok(h) => {
                            if let Some(i) = only {
                                pinned.insert(h, settings.servers[i].auth);
                            }
                            waiting.insert(h, done);
                        }
                        Err(e) => {
                            warn!(error = %e, "RADIUS request not sent");
                            let _ = done.send(Outcome::NoResponse);
                        }
                    }},
                }
            }
            Some((sock, from, data)) = dg_rx.recv() => {
                let from = canonical(from);
                let server = settings
                    .servers
                    .iter()
                    .position(|s| canonical(s.auth) == from || canonical(s.acct) == from);
                let before = client.counters();
                client.handle_datagram(Instant::now(), sock, server, &data);
                log_drop(before, client.counters(), from);
            }
            _ = sleep => client.handle_timeout(Instant::now()),
        }
        // Requests whose asker went away need no answer.
        waiting.retain(|h, w| {
            let keep = !w.is_closed();
            if !keep {
                client.cancel(*h);
                pinned.remove(h);
            }
            keep
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::radius::RadiusServer;

    fn settings(addrs: &[&str]) -> RadiusSettings {
        RadiusSettings {
            servers: addrs
                .iter()
                .map(|a| RadiusServer {
                    auth: a.parse().unwrap(),
                    acct: a.parse().unwrap(),
                    secret: radius::Secret::new("s"),
                })
                .collect(),
            nas_identifier: "t".into(),
            nas_ip_address: None,
            timeout: std::time::Duration::from_secs(3),
            tries: 3,
            dead_time: std::time::Duration::from_secs(30),
            accounting: false,
            acct_interim_interval: None,
            dae_listen: None,
            dae_clients: Vec::new(),
            eap_pass_through: true,
        }
    }

    fn with_state(state: &[u8]) -> radius::Request {
        let mut r = radius::Request::new(radius::Code::AccessRequest);
        r.packet.push(radius::attr::EAP_MESSAGE, [2, 1, 0, 4]);
        r.packet.push(radius::attr::STATE, state);
        r
    }

    #[test]
    fn a_state_goes_back_to_the_server_that_issued_it() {
        let now = Instant::now();
        let s = settings(&["10.0.0.1:1812", "10.0.0.2:1812"]);
        let mut pins = StatePins::default();
        pins.issued(now, b"st-b", s.servers[1].auth);
        // The first request has no State: any server.
        let first = radius::Request::new(radius::Code::AccessRequest);
        assert_eq!(pin(&mut pins, &s, now, first).unwrap().server, None);
        assert_eq!(
            pin(&mut pins, &s, now, with_state(b"st-b")).unwrap().server,
            Some(1)
        );
        // Used once; a State nobody issued has no server to go to.
        assert!(pin(&mut pins, &s, now, with_state(b"st-b")).is_none());
        assert!(pin(&mut pins, &s, now, with_state(b"forged")).is_none());
        // After a reload the same server is found by its address, at its
        // new place; a server removed by the reload is nobody.
        pins.issued(now, b"st-c", s.servers[1].auth);
        pins.issued(now, b"st-d", s.servers[0].auth);
        let reloaded = settings(&["10.0.0.3:1812", "10.0.0.2:1812"]);
        assert_eq!(
            pin(&mut pins, &reloaded, now, with_state(b"st-c"))
                .unwrap()
                .server,
            Some(1)
        );
        assert!(pin(&mut pins, &reloaded, now, with_state(b"st-d")).is_none());
        // Expired.
        pins.issued(now, b"old", s.servers[0].auth);
        let later = now + StatePins::TTL;
        assert!(pin(&mut pins, &s, later, with_state(b"old")).is_none());
        // Accounting is never pinned.
        let mut acct = radius::Request::new(radius::Code::AccountingRequest);
        acct.packet.push(radius::attr::STATE, "x");
        assert_eq!(pin(&mut pins, &s, now, acct).unwrap().server, None);
    }
}
