//! Rootless client mode: no TUN device, no privileges. A user-space TCP/IP
//! stack (smoltcp) holds the tunnel's address (IPv4 from SSTP's IPCP, or
//! IPv6 from IP-HTTPS's Router Advertisement) and terminates the
//! session's packets itself; local TCP ports are forwarded through it to
//! hosts on the server's side, like ssh `-L`, and a SOCKS5 proxy
//! ([`super::socks5`]) opens TCP connections and UDP associations through
//! it, resolving host names (A or AAAA, by the stack's family) with the DNS
//! server the tunnel gave (IPCP, or RDNSS, RFC 8106).
//!
//! * `--forward [BIND:]PORT:HOST:PORT` (repeatable) and `--socks5 ADDR`:
//!   the listeners are bound once at start (forwards on 127.0.0.1 unless
//!   BIND is given) and outlive reconnects; connections accepted while the
//!   tunnel is down wait for it.
//! * The stack runs in one task per tunnel connection. The driver hands it
//!   the session's packets on a channel and takes its packets on another
//!   ([`crate::driver::TunSide::Stack`]); both are bounded. Towards the
//!   session the stack waits for room (smoltcp holds its data meanwhile);
//!   towards the stack the driver drops what does not fit, as a full TUN
//!   queue would.
//! * The stack's MTU is what a TUN device would get: over SSTP the smaller
//!   of our MRU and the server's (up to 4000 against our server: larger
//!   segments, fewer packets), over IP-HTTPS 1280.
//! * Each forwarded connection is one smoltcp TCP socket (256 KiB buffers,
//!   window scaling) and one task copying between it and the local socket
//!   through bounded channels; a full channel stops reading the smoltcp
//!   socket, so its receive window closes instead of memory growing.
//!
//! * SOCKS UDP datagrams to a host name (RFC 1928 §7, ATYP 3) are resolved
//!   through the tunnel's DNS once per name and association; datagrams to
//!   a name being resolved wait (a few), and a name that does not resolve
//!   drops them.
//!
//! * One address family per stack: a destination of the other family is
//!   refused in plain words. Forwards take IPv6 literals in brackets.
//!
//! Not yet: SOCKS BIND.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::socket::{dns, tcp, udp};
use smoltcp::wire::{DnsQueryType, HardwareAddress, IpAddress, IpCidr, IpEndpoint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot, Mutex, Notify};
use tracing::{debug, info, warn};

use super::socks5::{self, Dest, Request};
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
/// Largest packet of the stack (SSTP's `--mru` range; IP-HTTPS gives
/// 1280).
const MAX_MTU: u16 = 4000;
/// Seconds a connection through the tunnel may take to open.
const CONNECT_TIMEOUT: u64 = 30;

/// One `--forward [BIND:]PORT:HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Where to connect through the tunnel (a name is resolved there).
    pub target: Dest,
}

impl FromStr for Forward {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let syntax = || format!("--forward {s}: expected [BIND:]PORT:HOST:PORT");
        let (rest, port) = s.rsplit_once(':').ok_or_else(syntax)?;
        // HOST may be an IPv6 literal in brackets.
        let (before, host) = match rest.strip_suffix(']').and_then(|r| r.rsplit_once('[')) {
            Some((before, host)) => (before.strip_suffix(':').ok_or_else(syntax)?, host),
            None => rest.rsplit_once(':').ok_or_else(syntax)?,
        };
        let (bind, lport) = before.rsplit_once(':').unwrap_or(("127.0.0.1", before));
        let bind = bind.trim_start_matches('[').trim_end_matches(']');
        let port_of = |p: &str, what: &str| {
            p.parse::<u16>()
                .ok()
                .filter(|&n| n != 0)
                .ok_or_else(|| format!("--forward {s}: {what} \"{p}\" is not a port number"))
        };
        let bind: IpAddr = bind
            .parse()
            .map_err(|_| format!("--forward {s}: \"{bind}\" is not an IP address to listen on"))?;
        let port = port_of(port, "port")?;
        let target = match host.parse::<IpAddr>() {
            Ok(ip) => Dest::Ip(SocketAddr::new(ip, port)),
            Err(_) if socks5::is_host_name(host) => Dest::Name(host.to_ascii_lowercase(), port),
            Err(_) => {
                return Err(format!(
                    "--forward {s}: \"{host}\" is neither an IP address nor a host name"
                ))
            }
        };
        Ok(Forward {
            listen: SocketAddr::new(bind, port_of(lport, "local port")?),
            target,
        })
    }
}

/// What the listeners hand to the stack.
pub enum Open {
    /// A TCP connection to `dest`; with `socks`, the client waits for a
    /// SOCKS reply once the connection is open (or failed).
    Tcp {
        stream: TcpStream,
        dest: Dest,
        socks: bool,
    },
    /// A SOCKS UDP association: its control connection and relay socket
    /// (already announced to the client).
    Udp {
        control: TcpStream,
        relay: UdpSocket,
    },
}

/// The listeners of every `--forward` and `--socks5`, and what they
/// accepted that no tunnel has taken yet.
pub struct Listeners {
    accepted: Mutex<mpsc::Receiver<Open>>,
}

/// Binds every listener (so a port in use fails at start) and starts
/// accepting.
pub async fn start_listeners(
    forwards: &[Forward],
    socks: Option<SocketAddr>,
) -> anyhow::Result<Arc<Listeners>> {
    let (tx, rx) = mpsc::channel(ACCEPT_QUEUE);
    for f in forwards {
        let l = TcpListener::bind(f.listen)
            .await
            .map_err(|e| anyhow::anyhow!("--forward: cannot listen on {}: {e}", f.listen))?;
        info!(listen = %l.local_addr().unwrap_or(f.listen), target = %f.target, "forwarding");
        let (tx, target) = (tx.clone(), f.target.clone());
        tokio::spawn(accept_loop(l, move |stream| {
            let (tx, dest) = (tx.clone(), target.clone());
            async move {
                let _ = tx
                    .send(Open::Tcp {
                        stream,
                        dest,
                        socks: false,
                    })
                    .await;
            }
        }));
    }
    if let Some(addr) = socks {
        let l = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("--socks5: cannot listen on {addr}: {e}"))?;
        info!(listen = %l.local_addr().unwrap_or(addr), "SOCKS5 proxy");
        let tx = tx.clone();
        tokio::spawn(accept_loop(l, move |stream| {
            let tx = tx.clone();
            async move {
                if let Some(open) = socks_request(stream).await {
                    let _ = tx.send(open).await;
                }
            }
        }));
    }
    Ok(Arc::new(Listeners {
        accepted: Mutex::new(rx),
    }))
}

/// Accepts connections on `l`, each handled by `f` in its own task.
async fn accept_loop<F, Fut>(l: TcpListener, f: F)
where
    F: Fn(TcpStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        match l.accept().await {
            Ok((s, peer)) => {
                debug!(%peer, "local connection accepted");
                tokio::spawn(f(s));
            }
            Err(e) => {
                warn!(error = %e, "accepting a local connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The SOCKS5 handshake of one client; what the stack must open, if any.
async fn socks_request(mut stream: TcpStream) -> Option<Open> {
    match socks5::handshake(&mut stream).await {
        Ok(Request::Connect(dest)) => {
            debug!(%dest, "SOCKS CONNECT");
            Some(Open::Tcp {
                stream,
                dest,
                socks: true,
            })
        }
        Ok(Request::UdpAssociate) => {
            let ip = stream
                .local_addr()
                .map_or(Ipv4Addr::LOCALHOST.into(), |a| a.ip());
            let relay = match UdpSocket::bind((ip, 0)).await {
                Ok(r) => r,
                Err(e) => {
                    warn!(error = %e, "SOCKS UDP ASSOCIATE: cannot bind a relay socket");
                    let _ = stream
                        .write_all(&socks5::reply(socks5::REP_FAILURE, socks5::unspecified()))
                        .await;
                    return None;
                }
            };
            let bound = relay.local_addr().ok()?;
            stream
                .write_all(&socks5::reply(socks5::REP_OK, bound))
                .await
                .ok()?;
            debug!(relay = %bound, "SOCKS UDP ASSOCIATE");
            Some(Open::Udp {
                control: stream,
                relay,
            })
        }
        Err(e) => {
            debug!(error = %e, "SOCKS request refused");
            None
        }
    }
}

/// The tunnel's side of a stack: its address, on-link prefix length, the
/// next hop of its default route (only a name: with `Medium::Ip` there is
/// no neighbour discovery), and the DNS servers the tunnel gave (IPCP, or
/// RDNSS in a Router Advertisement).
pub struct Addressing {
    pub local: IpAddr,
    pub prefix_len: u8,
    pub gateway: IpAddr,
    pub dns: Vec<IpAddr>,
}

impl Addressing {
    /// An IPv4 address from IPCP: a /32, everything through the peer.
    pub fn ipv4(local: Ipv4Addr, dns: &[Ipv4Addr]) -> Self {
        Addressing {
            local: local.into(),
            prefix_len: 32,
            gateway: local.into(),
            dns: dns.iter().map(|&d| d.into()).collect(),
        }
    }
}

/// Starts a stack for one tunnel connection, resolving names with the
/// first DNS server of the address's family; the returned side goes to the
/// driver. The stack ends when the driver drops it.
pub fn start(a: Addressing, mtu: u16, l: Arc<Listeners>) -> TunSide {
    let (to_stack, from_session) = mpsc::channel(PACKET_QUEUE);
    let (to_session, from_stack) = mpsc::channel(PACKET_QUEUE);
    tokio::spawn(run(a, mtu, to_session, from_session, l));
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
        // Back-pressure: while the session has not taken what is queued,
        // smoltcp holds its data (its window and timers stay right) instead
        // of our dropping packets it would have to retransmit.
        (self.tx.len() < PACKET_QUEUE).then_some(TxTok(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ip;
        c.max_transmission_unit = self.mtu;
        c
    }
}

/// Local ports for the stack's own sockets.
struct Ports(u16);

impl Ports {
    fn next(&mut self) -> u16 {
        let p = self.0;
        self.0 = if p == u16::MAX { 49152 } else { p + 1 };
        p
    }
}

/// One TCP connection inside the stack (a forward or a SOCKS CONNECT).
struct Conn {
    dest: Dest,
    /// The smoltcp socket, once the address is known.
    handle: Option<SocketHandle>,
    /// A name being resolved, with the port to connect to.
    query: Option<(dns::QueryHandle, u16)>,
    /// The SOCKS reply, sent once the connection is open or failed.
    reply: Option<oneshot::Sender<(u8, SocketAddr)>>,
    opened: std::time::Instant,
    /// Data for the local socket; `None` once the remote side finished.
    to_local: Option<mpsc::Sender<Vec<u8>>>,
    from_local: mpsc::Receiver<Vec<u8>>,
    pending: Vec<u8>,
    local_eof: bool,
}

/// What the stack shares with every connection while servicing it.
struct Ctx<'a, 'b> {
    iface: &'a mut Interface,
    sockets: &'a mut SocketSet<'b>,
    dns: Option<SocketHandle>,
    ports: &'a mut Ports,
    local: IpAddr,
}

impl Ctx<'_, '_> {
    /// The DNS query type for the stack's address family.
    fn query_type(&self) -> DnsQueryType {
        if self.local.is_ipv4() {
            DnsQueryType::A
        } else {
            DnsQueryType::Aaaa
        }
    }

    /// The first address of the stack's family among `addrs`.
    fn pick(&self, addrs: &[IpAddress]) -> Option<IpAddr> {
        addrs
            .iter()
            .map(|&a| IpAddr::from(a))
            .find(|a| a.is_ipv4() == self.local.is_ipv4())
    }

    fn connect(&mut self, to: SocketAddr) -> Result<(SocketHandle, u16), String> {
        if to.is_ipv4() != self.local.is_ipv4() {
            return Err(format!(
                "the tunnel carries {} only",
                if self.local.is_ipv4() { "IPv4" } else { "IPv6" }
            ));
        }
        let mut sock = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; SOCKET_BUF]),
            tcp::SocketBuffer::new(vec![0; SOCKET_BUF]),
        );
        sock.set_nagle_enabled(false);
        sock.set_keep_alive(Some(smoltcp::time::Duration::from_secs(60)));
        sock.set_timeout(Some(smoltcp::time::Duration::from_secs(CONNECT_TIMEOUT)));
        let port = self.ports.next();
        sock.connect(
            self.iface.context(),
            (IpAddress::from(to.ip()), to.port()),
            port,
        )
        .map_err(|e| e.to_string())?;
        Ok((self.sockets.add(sock), port))
    }
}

impl Conn {
    fn new(
        dest: Dest,
        socks: bool,
        stream: TcpStream,
        wake: &Arc<Notify>,
        cx: &mut Ctx<'_, '_>,
    ) -> Option<Conn> {
        let (up_tx, up_rx) = mpsc::channel(CHUNK_QUEUE);
        let (down_tx, down_rx) = mpsc::channel(CHUNK_QUEUE);
        let (reply_tx, reply_rx) = if socks {
            let (t, r) = oneshot::channel();
            (Some(t), Some(r))
        } else {
            (None, None)
        };
        tokio::spawn(pump(stream, up_tx, down_rx, reply_rx, wake.clone()));
        let mut c = Conn {
            dest: dest.clone(),
            handle: None,
            query: None,
            reply: reply_tx,
            opened: std::time::Instant::now(),
            to_local: Some(down_tx),
            from_local: up_rx,
            pending: Vec::new(),
            local_eof: false,
        };
        match dest {
            Dest::Ip(to) => c.connect(to, cx).then_some(c),
            Dest::Name(name, port) => {
                let Some(h) = cx.dns else {
                    warn!(%name, "cannot resolve: the server gave no DNS server");
                    c.fail(socks5::REP_HOST_UNREACHABLE);
                    return None;
                };
                let qtype = cx.query_type();
                let d = cx.sockets.get_mut::<dns::Socket>(h);
                match d.start_query(cx.iface.context(), &name, qtype) {
                    Ok(q) => {
                        c.query = Some((q, port));
                        Some(c)
                    }
                    Err(e) => {
                        warn!(%name, error = %e, "cannot resolve");
                        c.fail(socks5::REP_HOST_UNREACHABLE);
                        None
                    }
                }
            }
        }
    }

    fn fail(&mut self, rep: u8) {
        if let Some(r) = self.reply.take() {
            let _ = r.send((rep, socks5::unspecified()));
        }
    }

    fn connect(&mut self, to: SocketAddr, cx: &mut Ctx<'_, '_>) -> bool {
        match cx.connect(to) {
            Ok((h, _)) => {
                self.handle = Some(h);
                true
            }
            Err(e) => {
                warn!(target = %to, error = %e, "cannot open a connection through the tunnel");
                self.fail(socks5::REP_FAILURE);
                false
            }
        }
    }

    /// Frees what the connection holds in the stack.
    fn release(&mut self, cx: &mut Ctx<'_, '_>) {
        if let Some(h) = self.handle.take() {
            cx.sockets.remove(h);
        }
        if let (Some((q, _)), Some(d)) = (self.query.take(), cx.dns) {
            cx.sockets.get_mut::<dns::Socket>(d).cancel_query(q);
        }
    }

    /// Moves the connection along; false when it is over.
    fn service(&mut self, cx: &mut Ctx<'_, '_>) -> bool {
        if let (Some((q, port)), Some(d)) = (self.query, cx.dns) {
            match cx.sockets.get_mut::<dns::Socket>(d).get_query_result(q) {
                Err(dns::GetQueryResultError::Pending) => {
                    // The local side may give up while we resolve.
                    return !self.local_gone();
                }
                Err(dns::GetQueryResultError::Failed) => {
                    self.query = None;
                    info!(dest = %self.dest, "name did not resolve through the tunnel");
                    self.fail(socks5::REP_HOST_UNREACHABLE);
                    return false;
                }
                Ok(addrs) => {
                    self.query = None;
                    let Some(ip) = cx.pick(&addrs) else {
                        info!(dest = %self.dest, "the name has no address of the tunnel's family");
                        self.fail(socks5::REP_HOST_UNREACHABLE);
                        return false;
                    };
                    debug!(dest = %self.dest, address = %ip, "resolved through the tunnel");
                    if !self.connect(SocketAddr::new(ip, port), cx) {
                        return false;
                    }
                }
            }
        }
        let Some(h) = self.handle else {
            return false;
        };
        let local = cx.local;
        let s = cx.sockets.get_mut::<tcp::Socket>(h);
        if self.reply.is_some() {
            match s.state() {
                tcp::State::SynSent | tcp::State::SynReceived => return true,
                tcp::State::Closed | tcp::State::TimeWait => {
                    let rep = if self.opened.elapsed() >= Duration::from_secs(CONNECT_TIMEOUT) {
                        socks5::REP_HOST_UNREACHABLE
                    } else {
                        socks5::REP_REFUSED
                    };
                    debug!(dest = %self.dest, "connection through the tunnel failed");
                    self.fail(rep);
                    return false;
                }
                _ => {
                    let port = s.local_endpoint().map_or(0, |e| e.port);
                    if let Some(r) = self.reply.take() {
                        let _ = r.send((socks5::REP_OK, SocketAddr::new(local, port)));
                    }
                }
            }
        }
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

    fn local_gone(&self) -> bool {
        self.local_eof || self.from_local.is_closed()
    }
}

/// Copies between a local socket and its channels until both ends close;
/// a SOCKS client first gets its reply.
async fn pump(
    mut stream: TcpStream,
    up: mpsc::Sender<Vec<u8>>,
    mut down: mpsc::Receiver<Vec<u8>>,
    reply: Option<oneshot::Receiver<(u8, SocketAddr)>>,
    wake: Arc<Notify>,
) {
    if let Some(r) = reply {
        let (rep, bound) = r
            .await
            .unwrap_or((socks5::REP_FAILURE, socks5::unspecified()));
        if stream.write_all(&socks5::reply(rep, bound)).await.is_err() || rep != socks5::REP_OK {
            return;
        }
    }
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

/// Names a UDP association resolves at once.
const UDP_QUERIES: usize = 8;
/// Datagrams held per name while it resolves.
const UDP_HELD: usize = 16;

/// A name a UDP association is resolving, with the datagrams (port,
/// payload) waiting for it.
struct Resolving {
    query: dns::QueryHandle,
    name: String,
    held: Vec<(u16, Vec<u8>)>,
}

/// One SOCKS UDP association inside the stack.
struct Assoc {
    handle: SocketHandle,
    to_client: mpsc::Sender<(SocketAddr, Vec<u8>)>,
    from_client: mpsc::Receiver<(Dest, Vec<u8>)>,
    /// Names resolved through the tunnel for this association.
    names: std::collections::HashMap<String, IpAddr>,
    resolving: Vec<Resolving>,
}

impl Assoc {
    fn new(
        control: TcpStream,
        relay: UdpSocket,
        wake: &Arc<Notify>,
        cx: &mut Ctx<'_, '_>,
    ) -> Option<Assoc> {
        let mut sock = udp::Socket::new(
            udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 64], vec![0; 128 * 1024]),
            udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 64], vec![0; 128 * 1024]),
        );
        let port = cx.ports.next();
        if let Err(e) = sock.bind((IpAddress::from(cx.local), port)) {
            warn!(error = %e, "SOCKS UDP ASSOCIATE: cannot bind in the stack");
            return None;
        }
        let (up_tx, up_rx) = mpsc::channel(CHUNK_QUEUE * 4);
        let (down_tx, down_rx) = mpsc::channel(CHUNK_QUEUE * 4);
        tokio::spawn(relay_udp(control, relay, up_tx, down_rx, wake.clone()));
        Some(Assoc {
            handle: cx.sockets.add(sock),
            to_client: down_tx,
            from_client: up_rx,
            names: Default::default(),
            resolving: Vec::new(),
        })
    }

    /// Frees what the association holds in the stack.
    fn release(&mut self, cx: &mut Ctx<'_, '_>) {
        cx.sockets.remove(self.handle);
        if let Some(d) = cx.dns {
            for r in self.resolving.drain(..) {
                cx.sockets.get_mut::<dns::Socket>(d).cancel_query(r.query);
            }
        }
    }

    /// Sends one datagram through the tunnel.
    fn send(s: &mut udp::Socket<'_>, to: SocketAddr, data: &[u8]) {
        let ep = IpEndpoint::new(IpAddress::from(to.ip()), to.port());
        if let Err(e) = s.send_slice(data, ep) {
            debug!(error = %e, "UDP datagram through the tunnel dropped");
        }
    }

    /// Answers of the names being resolved: their held datagrams go out
    /// (or are dropped when the name does not resolve).
    fn resolved(&mut self, cx: &mut Ctx<'_, '_>) {
        let Some(d) = cx.dns else {
            return;
        };
        let local = cx.local;
        let mut i = 0;
        while i < self.resolving.len() {
            let r = &self.resolving[i];
            let ip = match cx
                .sockets
                .get_mut::<dns::Socket>(d)
                .get_query_result(r.query)
            {
                Err(dns::GetQueryResultError::Pending) => {
                    i += 1;
                    continue;
                }
                Err(dns::GetQueryResultError::Failed) => None,
                Ok(addrs) => addrs
                    .iter()
                    .map(|&a| IpAddr::from(a))
                    .find(|a| a.is_ipv4() == local.is_ipv4()),
            };
            let r = self.resolving.swap_remove(i);
            let Some(ip) = ip else {
                info!(name = %r.name, "name did not resolve through the tunnel: its UDP datagrams are dropped");
                continue;
            };
            debug!(name = %r.name, address = %ip, "resolved through the tunnel");
            self.names.insert(r.name, ip);
            let s = cx.sockets.get_mut::<udp::Socket>(self.handle);
            for (port, data) in r.held {
                Self::send(s, SocketAddr::new(ip, port), &data);
            }
        }
    }

    /// A datagram to a host name: sent if the name is known, else held
    /// while it resolves.
    fn send_to_name(&mut self, name: String, port: u16, data: Vec<u8>, cx: &mut Ctx<'_, '_>) {
        if let Some(ip) = self.names.get(&name) {
            let s = cx.sockets.get_mut::<udp::Socket>(self.handle);
            Self::send(s, SocketAddr::new(*ip, port), &data);
            return;
        }
        if let Some(r) = self.resolving.iter_mut().find(|r| r.name == name) {
            if r.held.len() < UDP_HELD {
                r.held.push((port, data));
            }
            return;
        }
        let Some(d) = cx.dns else {
            warn!(%name, "cannot resolve: the server gave no DNS server; UDP datagram dropped");
            return;
        };
        if self.resolving.len() >= UDP_QUERIES {
            debug!(%name, "too many names resolving: UDP datagram dropped");
            return;
        }
        let qtype = cx.query_type();
        let sock = cx.sockets.get_mut::<dns::Socket>(d);
        match sock.start_query(cx.iface.context(), &name, qtype) {
            Ok(query) => self.resolving.push(Resolving {
                query,
                name,
                held: vec![(port, data)],
            }),
            Err(e) => warn!(%name, error = %e, "cannot resolve: UDP datagram dropped"),
        }
    }

    /// Moves datagrams both ways; false when the association is over.
    fn service(&mut self, cx: &mut Ctx<'_, '_>) -> bool {
        self.resolved(cx);
        let s = cx.sockets.get_mut::<udp::Socket>(self.handle);
        while let Ok((data, meta)) = s.recv() {
            let from = SocketAddr::new(meta.endpoint.addr.into(), meta.endpoint.port);
            // A full queue drops the datagram, as a network would.
            let _ = self.to_client.try_send((from, data.to_vec()));
        }
        while cx.sockets.get_mut::<udp::Socket>(self.handle).can_send() {
            match self.from_client.try_recv() {
                Ok((Dest::Ip(to), data)) => {
                    Self::send(cx.sockets.get_mut::<udp::Socket>(self.handle), to, &data);
                }
                Ok((Dest::Name(name, port), data)) => self.send_to_name(name, port, data, cx),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => return false,
            }
        }
        !self.to_client.is_closed()
    }
}

/// The local side of a UDP association (RFC 1928 §7): datagrams from the
/// client (only from the control connection's address) go up with their
/// header removed, datagrams from the tunnel go back with one; the
/// association ends with its control connection.
async fn relay_udp(
    mut control: TcpStream,
    relay: UdpSocket,
    up: mpsc::Sender<(Dest, Vec<u8>)>,
    mut down: mpsc::Receiver<(SocketAddr, Vec<u8>)>,
    wake: Arc<Notify>,
) {
    let Ok(owner) = control.peer_addr() else {
        return;
    };
    let mut client: Option<SocketAddr> = None;
    let mut buf = vec![0u8; 65536];
    let mut ctl = [0u8; 256];
    loop {
        tokio::select! {
            r = control.read(&mut ctl) => {
                if matches!(r, Ok(0) | Err(_)) {
                    break;
                }
            }
            r = relay.recv_from(&mut buf) => {
                let Ok((n, from)) = r else { break };
                if from.ip() != owner.ip() {
                    continue;
                }
                client = Some(from);
                match socks5::parse_udp(&buf[..n]) {
                    Some((to, off)) => {
                        if up.try_send((to, buf[off..n].to_vec())).is_ok() {
                            wake.notify_one();
                        }
                    }
                    None => debug!("malformed or fragmented SOCKS UDP datagram dropped"),
                }
            }
            d = down.recv() => {
                let Some((src, data)) = d else { break };
                if let Some(c) = client {
                    let mut out = socks5::udp_header(src);
                    out.extend_from_slice(&data);
                    let _ = relay.send_to(&out, c).await;
                }
            }
        }
    }
    debug!("SOCKS UDP association closed");
}

/// smoltcp sends one segment per socket per poll: poll egress again while
/// a socket still has something to send now and the queue to the session
/// has room (bounded work per turn).
fn egress(
    iface: &mut Interface,
    dev: &mut Queues,
    sockets: &mut SocketSet<'_>,
    now: smoltcp::time::Instant,
) {
    for _ in 0..PACKET_QUEUE {
        if dev.tx.len() >= PACKET_QUEUE
            || iface.poll_delay(now, sockets) != Some(smoltcp::time::Duration::ZERO)
        {
            break;
        }
        iface.poll_egress(now, dev, sockets);
    }
}

async fn run(
    a: Addressing,
    mtu: u16,
    to_session: mpsc::Sender<Vec<u8>>,
    mut from_session: mpsc::Receiver<Vec<u8>>,
    listeners: Arc<Listeners>,
) {
    let mut accepted = listeners.accepted.lock().await;
    let mut dev = Queues {
        rx: VecDeque::new(),
        tx: VecDeque::new(),
        mtu: usize::from(mtu.clamp(576, MAX_MTU)),
    };
    let mut config = Config::new(HardwareAddress::Ip);
    config.random_seed = rand::random();
    let mut iface = Interface::new(config, &mut dev, smoltcp::time::Instant::now());
    let local = a.local;
    iface.update_ip_addrs(|addrs| {
        let _ = addrs.push(IpCidr::new(local.into(), a.prefix_len));
    });
    // Everything goes into the tunnel; with Medium::Ip the gateway is only
    // a name (no neighbour discovery).
    let _ = match a.gateway {
        IpAddr::V4(g) => iface.routes_mut().add_default_ipv4_route(g),
        IpAddr::V6(g) => iface.routes_mut().add_default_ipv6_route(g),
    };
    let mut sockets = SocketSet::new(Vec::new());
    let dns_server = a
        .dns
        .iter()
        .copied()
        .find(|d| d.is_ipv4() == local.is_ipv4());
    let dns = dns_server.map(|d| sockets.add(dns::Socket::new(&[d.into()], Vec::new())));
    let mut ports = Ports(49152);
    let mut conns: Vec<Conn> = Vec::new();
    let mut assocs: Vec<Assoc> = Vec::new();
    let wake = Arc::new(Notify::new());
    let mtu = dev.mtu;
    match dns_server {
        Some(d) => info!(address = %local, mtu, dns = %d, "user-space stack up"),
        None => {
            info!(address = %local, mtu, "user-space stack up; no DNS server was given: host names will not resolve")
        }
    }

    loop {
        let now = smoltcp::time::Instant::now();
        iface.poll(now, &mut dev, &mut sockets);
        {
            let mut cx = Ctx {
                iface: &mut iface,
                sockets: &mut sockets,
                dns,
                ports: &mut ports,
                local,
            };
            conns.retain_mut(|c| {
                let keep = c.service(&mut cx);
                if !keep {
                    c.release(&mut cx);
                }
                keep
            });
            assocs.retain_mut(|a| {
                let keep = a.service(&mut cx);
                if !keep {
                    a.release(&mut cx);
                }
                keep
            });
        }
        iface.poll(now, &mut dev, &mut sockets);
        egress(&mut iface, &mut dev, &mut sockets, now);
        while !dev.tx.is_empty() {
            match to_session.try_reserve() {
                Ok(permit) => permit.send(dev.tx.pop_front().unwrap_or_default()),
                Err(mpsc::error::TrySendError::Full(())) => break,
                Err(mpsc::error::TrySendError::Closed(())) => {
                    debug!("user-space stack stopped");
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
                    debug!("user-space stack stopped");
                    return;
                }
            },
            a = accepted.recv() => {
                let Some(open) = a else { continue };
                let mut cx = Ctx {
                    iface: &mut iface,
                    sockets: &mut sockets,
                    dns,
                    ports: &mut ports,
                    local,
                };
                match open {
                    Open::Tcp { stream, dest, socks } => {
                        if let Some(c) = Conn::new(dest, socks, stream, &wake, &mut cx) {
                            conns.push(c);
                        }
                    }
                    Open::Udp { control, relay } => {
                        if let Some(a) = Assoc::new(control, relay, &wake, &mut cx) {
                            assocs.push(a);
                        }
                    }
                }
            }
            permit = to_session.reserve(), if !dev.tx.is_empty() => match permit {
                Ok(permit) => permit.send(dev.tx.pop_front().unwrap_or_default()),
                Err(_) => {
                    debug!("user-space stack stopped");
                    return;
                }
            },
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
        assert_eq!(f.target, Dest::Ip("10.44.0.1:80".parse().unwrap()));
        let f: Forward = "8080:Intranet.corp:80".parse().unwrap();
        assert_eq!(f.target, Dest::Name("intranet.corp".into(), 80));
        let f: Forward = "0.0.0.0:2222:192.168.1.5:22".parse().unwrap();
        assert_eq!(f.listen, "0.0.0.0:2222".parse().unwrap());
        let f: Forward = "[::1]:2222:192.168.1.5:22".parse().unwrap();
        assert_eq!(f.listen, "[::1]:2222".parse().unwrap());
        let f: Forward = "8080:[fd00:1::1]:80".parse().unwrap();
        assert_eq!(f.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(f.target, Dest::Ip("[fd00:1::1]:80".parse().unwrap()));
        let f: Forward = "[::1]:8080:[fd00:1::1]:80".parse().unwrap();
        assert_eq!(f.listen, "[::1]:8080".parse().unwrap());
        assert_eq!(f.target, Dest::Ip("[fd00:1::1]:80".parse().unwrap()));
        for (bad, says) in [
            ("8080", "expected [BIND:]PORT:HOST:PORT"),
            ("x:10.0.0.1:80", "local port \"x\" is not a port number"),
            ("80:10.0.0.1:0", "port \"0\" is not a port number"),
            ("80:bad name:80", "neither an IP address nor a host name"),
            ("80[fd00::1]:80", "expected [BIND:]PORT:HOST:PORT"),
            ("80:fd00::1:80", "is not"),
            ("nope:80:10.0.0.1:80", "\"nope\" is not an IP address"),
        ] {
            let e = bad.parse::<Forward>().unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
