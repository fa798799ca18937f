//! Rootless client mode: no TUN device, no privileges. A user-space TCP/IP
//! stack (smoltcp) holds the tunnel's IPv4 address and terminates the
//! session's packets itself; local TCP ports are forwarded through it to
//! hosts on the server's side, like ssh `-L`.
//!
//! * `--forward [BIND:]PORT:HOST:PORT` (repeatable): the listeners are bound
//!   once at start (127.0.0.1 unless BIND is given) and outlive reconnects;
//!   connections accepted while the tunnel is down wait for it.
//! * The stack runs in one task per tunnel connection. The driver hands it
//!   the session's packets on a channel and takes its packets on another
//!   ([`crate::driver::TunSide::Stack`]); both are bounded, and packets that
//!   do not fit are dropped (TCP recovers), never buffered without bound.
//! * Each forwarded connection is one smoltcp TCP socket (256 KiB buffers,
//!   window scaling) and one task copying between it and the local socket
//!   through bounded channels; a full channel stops reading the smoltcp
//!   socket, so its receive window closes instead of memory growing.
//!
//! Not yet: SOCKS5, host names (DNS through the tunnel), IPv6, IP-HTTPS.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Mutex, Notify};
use tracing::{debug, info, warn};

use crate::driver::TunSide;

/// Packets queued between the driver and the stack, each way.
const PACKET_QUEUE: usize = 512;
/// smoltcp socket buffers, each way (window scaling above 64 KiB).
const SOCKET_BUF: usize = 256 * 1024;
/// Chunks queued between a smoltcp socket and its local socket.
const CHUNK_QUEUE: usize = 16;
/// Largest chunk copied at once.
const CHUNK: usize = 16 * 1024;
/// Local connections waiting for a tunnel.
const ACCEPT_QUEUE: usize = 64;

/// One `--forward [BIND:]PORT:HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Where to connect through the tunnel.
    pub target: SocketAddrV4,
}

impl FromStr for Forward {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.rsplitn(4, ':').collect();
        let (bind, lport, host, port) = match parts.as_slice() {
            [port, host, lport] => ("127.0.0.1", *lport, *host, *port),
            [port, host, lport, bind] => (*bind, *lport, *host, *port),
            _ => return Err(format!("--forward {s}: expected [BIND:]PORT:HOST:PORT")),
        };
        let bind = bind.trim_start_matches('[').trim_end_matches(']');
        let port_of = |p: &str, what: &str| {
            p.parse::<u16>()
                .ok()
                .filter(|&n| n != 0)
                .ok_or_else(|| format!("--forward {s}: {what} \"{p}\" is not a port number"))
        };
        let bind: std::net::IpAddr = bind
            .parse()
            .map_err(|_| format!("--forward {s}: \"{bind}\" is not an IP address to listen on"))?;
        let host: Ipv4Addr = host.parse().map_err(|_| {
            format!("--forward {s}: \"{host}\" is not an IPv4 address (host names are not supported yet)")
        })?;
        Ok(Forward {
            listen: SocketAddr::new(bind, port_of(lport, "local port")?),
            target: SocketAddrV4::new(host, port_of(port, "port")?),
        })
    }
}

/// The listeners of every `--forward`, and the connections they accepted
/// that no tunnel has taken yet.
pub struct Forwarder {
    accepted: Mutex<mpsc::Receiver<(TcpStream, SocketAddrV4)>>,
}

/// Binds every forward's listener (so a port in use fails at start) and
/// starts accepting.
pub async fn start_forwards(forwards: &[Forward]) -> anyhow::Result<Arc<Forwarder>> {
    let (tx, rx) = mpsc::channel(ACCEPT_QUEUE);
    for f in forwards {
        let l = TcpListener::bind(f.listen)
            .await
            .map_err(|e| anyhow::anyhow!("--forward: cannot listen on {}: {e}", f.listen))?;
        info!(listen = %l.local_addr().unwrap_or(f.listen), target = %f.target, "forwarding");
        let (tx, target) = (tx.clone(), f.target);
        tokio::spawn(async move {
            loop {
                match l.accept().await {
                    Ok((s, peer)) => {
                        debug!(%peer, %target, "forwarded connection accepted");
                        if tx.send((s, target)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        warn!(error = %e, "accepting a forwarded connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
    }
    Ok(Arc::new(Forwarder {
        accepted: Mutex::new(rx),
    }))
}

/// Starts a stack holding `local` for one tunnel connection; the returned
/// side goes to the driver. The stack ends when the driver drops it.
pub fn start(local: Ipv4Addr, mtu: u16, fwd: Arc<Forwarder>) -> TunSide {
    let (to_stack, from_session) = mpsc::channel(PACKET_QUEUE);
    let (to_session, from_stack) = mpsc::channel(PACKET_QUEUE);
    tokio::spawn(run(local, mtu, to_session, from_session, fwd));
    TunSide::Stack {
        tx: to_stack,
        rx: from_stack,
    }
}

/// The smoltcp device: packets in from the session, out to it.
struct Queues {
    rx: VecDeque<Vec<u8>>,
    tx: VecDeque<Vec<u8>>,
    mtu: usize,
}

struct RxTok(Vec<u8>);
struct TxTok<'a>(&'a mut VecDeque<Vec<u8>>);

impl phy::RxToken for RxTok {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for TxTok<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut b = vec![0; len];
        let r = f(&mut b);
        self.0.push_back(b);
        r
    }
}

impl Device for Queues {
    type RxToken<'a> = RxTok;
    type TxToken<'a> = TxTok<'a>;

    fn receive(
        &mut self,
        _: smoltcp::time::Instant,
    ) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let p = self.rx.pop_front()?;
        Some((RxTok(p), TxTok(&mut self.tx)))
    }

    fn transmit(&mut self, _: smoltcp::time::Instant) -> Option<Self::TxToken<'_>> {
        Some(TxTok(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ip;
        c.max_transmission_unit = self.mtu;
        c
    }
}

/// One forwarded connection inside the stack.
struct Conn {
    handle: SocketHandle,
    /// Data for the local socket; `None` once the remote side finished.
    to_local: Option<mpsc::Sender<Vec<u8>>>,
    from_local: mpsc::Receiver<Vec<u8>>,
    pending: Vec<u8>,
    local_eof: bool,
}

impl Conn {
    /// Moves data both ways; false when the connection is over.
    fn service(&mut self, sockets: &mut SocketSet<'_>) -> bool {
        let s = sockets.get_mut::<tcp::Socket>(self.handle);
        // Remote to local, while the local side keeps up.
        if let Some(tx) = &self.to_local {
            while s.can_recv() {
                let Ok(permit) = tx.try_reserve() else {
                    if tx.is_closed() {
                        // The local socket is gone: reset the remote side.
                        s.abort();
                        return false;
                    }
                    break;
                };
                let mut buf = vec![0; CHUNK];
                match s.recv_slice(&mut buf) {
                    Ok(n) if n > 0 => {
                        buf.truncate(n);
                        permit.send(buf);
                    }
                    _ => break,
                }
            }
            if !s.may_recv() && !s.can_recv() && s.state() != tcp::State::SynSent {
                // The remote side sent FIN (or the connection failed).
                self.to_local = None;
            }
        }
        // Local to remote, while the socket has room.
        loop {
            if self.pending.is_empty() && !self.local_eof {
                match self.from_local.try_recv() {
                    Ok(d) => self.pending = d,
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        self.local_eof = true;
                        s.close();
                        break;
                    }
                }
            }
            if self.pending.is_empty() || !s.may_send() {
                break;
            }
            match s.send_slice(&self.pending) {
                Ok(n) if n > 0 => {
                    self.pending.drain(..n);
                }
                _ => break,
            }
        }
        !(matches!(s.state(), tcp::State::Closed | tcp::State::TimeWait) && self.to_local.is_none())
    }
}

/// Copies between a local socket and its channels until both ends close.
async fn pump(
    stream: TcpStream,
    up: mpsc::Sender<Vec<u8>>,
    mut down: mpsc::Receiver<Vec<u8>>,
    wake: Arc<Notify>,
) {
    let (mut r, mut w) = stream.into_split();
    let w_wake = wake.clone();
    let upward = async move {
        let mut buf = vec![0; CHUNK];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if up.send(buf[..n].to_vec()).await.is_err() {
                        break;
                    }
                    wake.notify_one();
                }
            }
        }
        drop(up);
        wake.notify_one();
    };
    let downward = async move {
        while let Some(d) = down.recv().await {
            if w.write_all(&d).await.is_err() {
                break;
            }
            // Room in the channel again: the stack may read more.
            w_wake.notify_one();
        }
        let _ = w.shutdown().await;
    };
    tokio::join!(upward, downward);
}

async fn run(
    local: Ipv4Addr,
    mtu: u16,
    to_session: mpsc::Sender<Vec<u8>>,
    mut from_session: mpsc::Receiver<Vec<u8>>,
    fwd: Arc<Forwarder>,
) {
    let mut accepted = fwd.accepted.lock().await;
    let mut dev = Queues {
        rx: VecDeque::new(),
        tx: VecDeque::new(),
        mtu: usize::from(mtu.clamp(576, 1500)),
    };
    let mut config = Config::new(HardwareAddress::Ip);
    config.random_seed = rand::random();
    let mut iface = Interface::new(config, &mut dev, smoltcp::time::Instant::now());
    iface.update_ip_addrs(|a| {
        let _ = a.push(IpCidr::new(IpAddress::Ipv4(local), 32));
    });
    // Everything goes into the tunnel; with Medium::Ip the gateway is only
    // a name (no neighbour discovery).
    let _ = iface.routes_mut().add_default_ipv4_route(local);
    let mut sockets = SocketSet::new(Vec::new());
    let mut conns: Vec<Conn> = Vec::new();
    let wake = Arc::new(Notify::new());
    let mut next_port: u16 = 49152;
    let mut dropped: u64 = 0;
    info!(address = %local, "user-space stack up");
    loop {
        let now = smoltcp::time::Instant::now();
        iface.poll(now, &mut dev, &mut sockets);
        conns.retain_mut(|c| {
            let keep = c.service(&mut sockets);
            if !keep {
                sockets.remove(c.handle);
            }
            keep
        });
        iface.poll(now, &mut dev, &mut sockets);
        while let Some(p) = dev.tx.pop_front() {
            match to_session.try_send(p) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => dropped += 1,
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    debug!(dropped, "user-space stack stopped");
                    return;
                }
            }
        }
        let delay = iface
            .poll_delay(now, &sockets)
            .map_or(Duration::from_secs(1), |d| {
                Duration::from_micros(d.total_micros())
            });
        tokio::select! {
            p = from_session.recv() => match p {
                Some(p) => {
                    dev.rx.push_back(p);
                    while dev.rx.len() < PACKET_QUEUE {
                        match from_session.try_recv() {
                            Ok(p) => dev.rx.push_back(p),
                            Err(_) => break,
                        }
                    }
                }
                None => {
                    debug!(dropped, "user-space stack stopped");
                    return;
                }
            },
            a = accepted.recv() => {
                let Some((stream, target)) = a else { continue };
                let mut sock = tcp::Socket::new(
                    tcp::SocketBuffer::new(vec![0; SOCKET_BUF]),
                    tcp::SocketBuffer::new(vec![0; SOCKET_BUF]),
                );
                sock.set_nagle_enabled(false);
                sock.set_keep_alive(Some(smoltcp::time::Duration::from_secs(60)));
                let port = next_port;
                next_port = if next_port == u16::MAX { 49152 } else { next_port + 1 };
                if let Err(e) = sock.connect(iface.context(), (IpAddress::Ipv4(*target.ip()), target.port()), port) {
                    warn!(%target, error = %e, "cannot open a forwarded connection");
                    continue;
                }
                let handle = sockets.add(sock);
                let (up_tx, up_rx) = mpsc::channel(CHUNK_QUEUE);
                let (down_tx, down_rx) = mpsc::channel(CHUNK_QUEUE);
                conns.push(Conn {
                    handle,
                    to_local: Some(down_tx),
                    from_local: up_rx,
                    pending: Vec::new(),
                    local_eof: false,
                });
                tokio::spawn(pump(stream, up_tx, down_rx, wake.clone()));
            }
            _ = wake.notified() => {}
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_syntax() {
        let f: Forward = "8080:10.44.0.1:80".parse().unwrap();
        assert_eq!(f.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(f.target, "10.44.0.1:80".parse().unwrap());
        let f: Forward = "0.0.0.0:2222:192.168.1.5:22".parse().unwrap();
        assert_eq!(f.listen, "0.0.0.0:2222".parse().unwrap());
        let f: Forward = "[::1]:2222:192.168.1.5:22".parse().unwrap();
        assert_eq!(f.listen, "[::1]:2222".parse().unwrap());
        for (bad, says) in [
            ("8080", "expected [BIND:]PORT:HOST:PORT"),
            ("x:10.0.0.1:80", "local port \"x\" is not a port number"),
            ("80:10.0.0.1:0", "port \"0\" is not a port number"),
            ("80:intranet:80", "host names are not supported yet"),
            ("nope:80:10.0.0.1:80", "\"nope\" is not an IP address"),
        ] {
            let e = bad.parse::<Forward>().unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
