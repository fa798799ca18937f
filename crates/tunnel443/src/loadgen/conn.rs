//! One load-generator connection: TCP from a chosen source address, TLS,
//! the HTTP preamble and the sans-IO client session of the real client
//! ([`crate::client::sstp`], [`crate::client::iphttps`]) run by the
//! shared [`Driver`] without a TUN device; or one of the attacker modes,
//! which stop (or crawl) at a chosen stage.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use session::{IphttpsClient, Session, SstpSession};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;

use super::report::{Collector, Stage};
use super::Mode;
use crate::driver::{Driver, TunSide, Turn};
use crate::io_util::BoxStream;
use crate::tls::CertHashes;

/// What every connection of a run shares.
pub struct Plan {
    pub mode: Mode,
    pub target: SocketAddr,
    pub host: String,
    pub server_name: rustls::pki_types::ServerName<'static>,
    pub tls: Arc<rustls::ClientConfig>,
    pub user: String,
    pub password: String,
    pub path: String,
    pub setup_timeout: Duration,
    /// Slow modes: one byte per this.
    pub trickle: Duration,
    /// Bad passwords: attempts per connection slot.
    pub attempts: u32,
    pub stats: Collector,
    /// Malformed mode: the inputs.
    pub corpus: super::malformed::Corpus,
}

/// A failure at a stage.
pub(super) type Fail = (Stage, String);

/// A TCP connection from `source` (`None`: the kernel's choice). With a
/// source the port is picked at connect time (IP_BIND_ADDRESS_NO_PORT),
/// so ports are shared across destinations.
pub async fn tcp(source: Option<IpAddr>, target: SocketAddr) -> std::io::Result<TcpStream> {
    let sock = if target.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(src) = source {
        let one: libc::c_int = 1;
        // SAFETY: a valid socket and an int option of the right size.
        unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&sock),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                &one as *const _ as *const libc::c_void,
                std::mem::size_of_val(&one) as libc::socklen_t,
            );
        }
        sock.bind(SocketAddr::new(src, 0))?;
    }
    let s = sock.connect(target).await?;
    let _ = s.set_nodelay(true);
    Ok(s)
}

pub(super) async fn within<T>(
    plan: &Plan,
    stage: Stage,
    f: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, Fail> {
    match tokio::time::timeout(plan.setup_timeout, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err((stage, e)),
        Err(_) => Err((stage, "timed out".into())),
    }
}

pub(super) async fn connect_tls(
    plan: &Plan,
    source: Option<IpAddr>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Fail> {
    let tcp = connect(plan, source).await?;
    let connector = tokio_rustls::TlsConnector::from(plan.tls.clone());
    within(plan, Stage::Tls, async {
        connector
            .connect(plan.server_name.clone(), tcp)
            .await
            .map_err(|e| crate::io_util::plain_error(&e))
    })
    .await
}

/// Runs one connection slot of the plan until `stop`.
pub async fn run(plan: Arc<Plan>, source: Option<IpAddr>, mut stop: watch::Receiver<bool>) {
    let started = Instant::now();
    plan.stats.started(started);
    let r = match plan.mode {
        Mode::Sstp | Mode::StopReading => sstp(&plan, source, started, &mut stop).await,
        Mode::Iphttps => iphttps(&plan, source, started, &mut stop).await,
        Mode::IdleTcp => idle_tcp(&plan, source, started, &mut stop).await,
        Mode::SlowTls => slow_tls(&plan, source, started, &mut stop).await,
        Mode::SlowHttp => slow_http(&plan, source, started, &mut stop).await,
        Mode::NoCallConnect => no_call_connect(&plan, source, started, &mut stop).await,
        Mode::StalledAuth => sstp(&plan, source, started, &mut stop).await,
        Mode::BadPassword => bad_password(&plan, source, &mut stop).await,
        Mode::Malformed => {
            super::malformed::run(&plan, &plan.corpus, source, started, &mut stop).await
        }
    };
    if let Err((stage, why)) = r {
        plan.stats.failed(stage, &why);
    }
}

/// Waits for `stop` (a dropped sender counts).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// Holds a connection the server should close: reads and discards until
/// the server closes (a failure at [`Stage::Hold`]) or `stop`.
pub(super) async fn hold_reading<S: tokio::io::AsyncRead + Unpin>(
    plan: &Plan,
    s: &mut S,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), Fail> {
    let mut buf = [0u8; 512];
    loop {
        tokio::select! {
            r = s.read(&mut buf) => match r {
                Ok(0) | Err(_) => {
                    plan.stats.down();
                    return Err((Stage::Hold, "the server closed the connection".into()));
                }
                Ok(_) => {}
            },
            _ = stopped(stop) => return Ok(()),
        }
    }
}

/// The TCP connection of one session, within the stage's deadline.
async fn connect(plan: &Plan, source: Option<IpAddr>) -> Result<TcpStream, Fail> {
    within(plan, Stage::Tcp, async {
        tcp(source, plan.target).await.map_err(|e| e.to_string())
    })
    .await
}

async fn idle_tcp(
    plan: &Plan,
    source: Option<IpAddr>,
    started: Instant,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), Fail> {
    let mut s = connect(plan, source).await?;
    plan.stats.setup(started.elapsed());
    hold_reading(plan, &mut s, stop).await
}

/// Writes `bytes` one at a time, one per [`Plan::trickle`], then holds;
/// the server's close is the expected end ([`Stage::Hold`]).
async fn trickle<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    plan: &Plan,
    s: &mut S,
    bytes: &[u8],
    stop: &mut watch::Receiver<bool>,
) -> Result<(), Fail> {
    let mut buf = [0u8; 512];
    let mut tick = tokio::time::interval(plan.trickle);
    for b in bytes.iter().chain(std::iter::repeat(&b'x')) {
        tokio::select! {
            _ = tick.tick() => {
                if s.write_all(std::slice::from_ref(b)).await.is_err() || s.flush().await.is_err() {
                    plan.stats.down();
                    return Err((Stage::Hold, "the server closed the connection".into()));
                }
            }
            r = s.read(&mut buf) => if matches!(r, Ok(0) | Err(_)) {
                plan.stats.down();
                return Err((Stage::Hold, "the server closed the connection".into()));
            },
            _ = stopped(stop) => return Ok(()),
        }
    }
    Ok(())
}

async fn slow_tls(
    plan: &Plan,
    source: Option<IpAddr>,
    started: Instant,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), Fail> {
    let mut s = connect(plan, source).await?;
    plan.stats.setup(started.elapsed());
    // A handshake record header announcing 512 bytes that come one by one.
    trickle(plan, &mut s, &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01], stop).await
}

async fn slow_http(
    plan: &Plan,
    source: Option<IpAddr>,
    started: Instant,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), Fail> {
    let mut s = connect_tls(plan, source).await?;
    plan.stats.setup(started.elapsed());
    trickle(
        plan,
        &mut s,
        b"SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/ HTTP/1.1\r\nX-",
        stop,
    )
    .await
}

async fn no_call_connect(
    plan: &Plan,
    source: Option<IpAddr>,
    started: Instant,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), Fail> {
    let mut s = connect_tls(plan, source).await?;
    within(plan, Stage::Http, async {
        crate::client::sstp::sstp_preamble(&mut s, &plan.host)
            .await
            .map_err(|f| f.to_string())
    })
    .await?;
    plan.stats.setup(started.elapsed());
    hold_reading(plan, &mut s, stop).await
}

/// TLS, HTTP and a fresh client session with `password`.
async fn open_sstp(
    plan: &Plan,
    source: Option<IpAddr>,
    password: &str,
) -> Result<(SstpSession, Driver), Fail> {
    let mut s = connect_tls(plan, source).await?;
    let leaf = s
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| CertHashes::of(c))
        .ok_or((Stage::Tls, "the server sent no certificate".to_string()))?;
    let buf = within(plan, Stage::Http, async {
        crate::client::sstp::sstp_preamble(&mut s, &plan.host)
            .await
            .map_err(|f| f.to_string())
    })
    .await?;
    let mut session = crate::client::sstp::new_session(
        leaf,
        &plan.user,
        password,
        None,
        ppp::lcp::DEFAULT_MRU,
        false,
    );
    if !buf.is_empty() {
        session.handle_stream_bytes(Instant::now(), &buf);
    }
    Ok((session, Driver::new(Box::new(s), TunSide::None)))
}

/// How a session's setup went.
enum Setup {
    Up,
    /// The mode's stopping point (stalled authentication).
    Stalled,
    Rejected,
}

/// Turns `s` until IPCP is up after Call Connected (or the mode's stopping
/// point, or a failure).
async fn drive_setup(
    plan: &Plan,
    s: &mut SstpSession,
    d: &mut Driver,
    stop: &mut watch::Receiver<bool>,
) -> Result<Setup, Fail> {
    use session::sstp::Event;
    let deadline = tokio::time::Instant::now() + plan.setup_timeout;
    let mut connected = false;
    let mut ipv4 = false;
    loop {
        while let Some(ev) = s.poll_event() {
            match ev {
                Event::Connected => connected = true,
                Event::Ipv4Up { .. } => ipv4 = true,
                Event::AuthFailed { .. } => return Ok(Setup::Rejected),
                Event::Closed(end) => {
                    let why = match end.ppp_first() {
                        Some(r) => format!("{r}"),
                        None => format!("{}", end.sstp),
                    };
                    return Err((Stage::Session, why));
                }
                _ => {}
            }
        }
        if connected && ipv4 {
            return Ok(Setup::Up);
        }
        if plan.mode == Mode::StalledAuth && s.ppp_phase() == ppp::Phase::Authenticate {
            return Ok(Setup::Stalled);
        }
        match tokio::time::timeout_at(deadline, d.turn(s, stop)).await {
            Err(_) => return Err((Stage::Session, "timed out".into())),
            Ok(Turn::Continue) => {}
            Ok(Turn::Stop) => return Err((Stage::Session, "stopped before setup".into())),
            Ok(Turn::Closed) => {}
            Ok(Turn::TunFailed(e)) => return Err((Stage::Session, e.to_string())),
        }
    }
}

/// Keeps a session up (the engines' echo timers run) until `stop`, then
/// closes it cleanly.
async fn hold<S: Session>(
    plan: &Plan,
    s: &mut S,
    d: &mut Driver,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), Fail> {
    let mut stopping = false;
    loop {
        while s.poll_event().is_some() {}
        match d.turn(s, stop).await {
            Turn::Continue => {}
            Turn::Stop => {
                stopping = true;
                s.close(Instant::now(), "load generator done");
            }
            Turn::Closed | Turn::TunFailed(_) => {
                plan.stats.down();
                return if stopping {
                    Ok(())
                } else {
                    Err((Stage::Hold, "the server ended the session".into()))
                };
            }
        }
    }
}

async fn sstp(
    plan: &Plan,
    source: Option<IpAddr>,
    started: Instant,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), Fail> {
    let (mut s, mut d) = open_sstp(plan, source, &plan.password).await?;
    match drive_setup(plan, &mut s, &mut d, stop).await? {
        Setup::Rejected => return Err((Stage::Session, "authentication failed".into())),
        Setup::Up if plan.mode == Mode::Sstp => {
            plan.stats.setup(started.elapsed());
            return hold(plan, &mut s, &mut d, stop).await;
        }
        Setup::Stalled => {
            // Silence from here: the server should close us.
            plan.stats.setup(started.elapsed());
            drop(s);
            return hold_reading(plan, &mut d.into_stream(), stop).await;
        }
        Setup::Up => plan.stats.setup(started.elapsed()),
    }
    // Stop reading (and answering): the server's writes pile up in the
    // socket buffers until it gives up on us.
    stopped(stop).await;
    plan.stats.down();
    Ok(())
}

/// Logs in with a wrong password `attempts` times (a new connection each
/// time), recording how long each rejection took: a throttled server
/// answers later, or refuses the connection.
async fn bad_password(
    plan: &Plan,
    source: Option<IpAddr>,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), Fail> {
    let wrong = format!("{}-wrong", plan.password);
    for _ in 0..plan.attempts {
        if *stop.borrow() {
            break;
        }
        let t0 = Instant::now();
        let attempt = async {
            let (mut s, mut d) = open_sstp(plan, source, &wrong).await?;
            drive_setup(plan, &mut s, &mut d, stop).await
        };
        match attempt.await {
            Ok(Setup::Rejected) => plan.stats.rejected(t0.elapsed()),
            Ok(_) => plan
                .stats
                .failed(Stage::Session, "a wrong password was accepted"),
            Err((stage, why)) => plan.stats.failed(stage, &why),
        }
    }
    Ok(())
}

async fn iphttps(
    plan: &Plan,
    source: Option<IpAddr>,
    started: Instant,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), Fail> {
    let s = connect_tls(plan, source).await?;
    let mut stream: BoxStream = Box::new(s);
    let buf = within(plan, Stage::Http, async {
        crate::client::iphttps::iphttps_preamble(
            &mut stream,
            &plan.host,
            &plan.path,
            iphttps::MIN_MTU,
        )
        .await
        .map_err(|e| crate::io_util::plain_error(&e))
    })
    .await?;
    let mut iid = [0u8; 8];
    rand::fill(&mut iid);
    iid[0] &= 0xfd;
    let ll = std::net::Ipv6Addr::from(
        [[0xfe, 0x80, 0, 0, 0, 0, 0, 0], iid]
            .concat()
            .try_into()
            .unwrap_or([0; 16]),
    );
    let mut s = IphttpsClient::new(ll, iphttps::MIN_MTU);
    if !buf.is_empty() {
        s.handle_stream_bytes(Instant::now(), &buf);
    }
    s.solicit_router();
    let mut d = Driver::new(stream, TunSide::None);
    let deadline = tokio::time::Instant::now() + plan.setup_timeout;
    loop {
        let mut advert = false;
        while let Some(ev) = s.poll_event() {
            match ev {
                session::iphttps::Event::RouterAdvert(_) => advert = true,
                session::iphttps::Event::Closed(_) => {
                    return Err((
                        Stage::Session,
                        "closed before a Router Advertisement".into(),
                    ))
                }
                _ => {}
            }
        }
        if advert {
            break;
        }
        match tokio::time::timeout_at(deadline, d.turn(&mut s, stop)).await {
            Err(_) => return Err((Stage::Session, "no Router Advertisement".into())),
            Ok(Turn::Continue) | Ok(Turn::Closed) => {}
            Ok(Turn::Stop) => return Err((Stage::Session, "stopped before setup".into())),
            Ok(Turn::TunFailed(e)) => return Err((Stage::Session, e.to_string())),
        }
    }
    plan.stats.setup(started.elapsed());
    hold(plan, &mut s, &mut d, stop).await
}
