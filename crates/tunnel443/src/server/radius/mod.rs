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
use tokio::sync::{mpsc, oneshot};
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
    Secrets(Vec<radius::Secret>),
}

/// A handle on the RADIUS task; clone freely.
#[derive(Clone)]
pub struct Radius {
    tx: mpsc::UnboundedSender<Cmd>,
    pub settings: Arc<RadiusSettings>,
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
            settings,
            extras: Arc::default(),
            controls: Arc::default(),
            counters,
        }
    }

    /// Requests, replies, timeouts and dropped replies so far.
    pub fn counters(&self) -> Counters {
        *self.counters.lock().expect("RADIUS counters lock")
    }

    /// Re-reads every server's secret file (SIGHUP); on any error nothing
    /// changes. Requests in flight keep their secret.
    pub fn reload_secrets(&self) -> anyhow::Result<usize> {
        let mut secrets = Vec::new();
        for (i, s) in self.settings.servers.iter().enumerate() {
            secrets.push(crate::config::radius::read_secret(
                &format!("radius.servers[{i}].secret_file"),
                &s.secret_file,
            )?);
        }
        let n = secrets.len();
        self.tx
            .send(Cmd::Secrets(secrets))
            .map_err(|_| anyhow::anyhow!("the RADIUS task is gone"))?;
        Ok(n)
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

async fn run(
    settings: Arc<RadiusSettings>,
    mut rx: mpsc::UnboundedReceiver<Cmd>,
    counters: Arc<std::sync::Mutex<Counters>>,
) {
    let mut client = Client::new(
        ClientConfig {
            secrets: settings.servers.iter().map(|s| s.secret.clone()).collect(),
            timeout: settings.timeout,
            tries: settings.tries,
            dead_time: settings.dead_time,
        },
        Box::new(|b: &mut [u8]| rand::fill(b)),
    );
    let (dg_tx, mut dg_rx) = mpsc::channel(1024);
    let mut io = Io {
        v6: settings.servers.iter().any(|s| s.auth.is_ipv6()),
        sockets: Vec::new(),
        datagrams: dg_tx,
    };
    let mut waiting: HashMap<Handle, oneshot::Sender<Outcome>> = HashMap::new();
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
                Event::Reply { handle, reply, .. } => {
                    if let Some(w) = waiting.remove(&handle) {
                        let _ = w.send(Outcome::Reply(reply));
                    }
                }
                Event::NoResponse { handle } => {
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
                    Some(Cmd::Secrets(s)) => {
                        client.set_secrets(s);
                    }
                    Some(Cmd::Ask { done, .. }) if done.is_closed() => {}
                    Some(Cmd::Ask { request, done }) => match client.send(Instant::now(), request) {
                        Ok(h) => {
                            waiting.insert(h, done);
                        }
                        Err(e) => {
                            warn!(error = %e, "RADIUS request not sent");
                            let _ = done.send(Outcome::NoResponse);
                        }
                    },
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
            }
            keep
        });
    }
}
