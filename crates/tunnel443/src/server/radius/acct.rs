//! RADIUS accounting (RFC 2866) from the session registry's notices:
//! Accounting-On at start, Start when a session carries traffic,
//! Interim-Update every interval (Acct-Interim-Interval from the
//! Access-Accept, else `[radius] acct_interim_interval`), Stop with the
//! counters and the Acct-Terminate-Cause of the way it ended, and
//! Accounting-Off at a clean shutdown. Every record is sent from a task of
//! its own through the RADIUS task (retransmission and failover there), so
//! accounting never waits on anything a session does; a record no server
//! acknowledged is logged with its content.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use radius::attr::{self, status};
use radius::{Code, Request};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::{Outcome, Radius};
use crate::server::registry::{EndCause, Notice, Registry, SessionId, SessionInfo};

/// What the Access-Accept said that accounting echoes.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    pub class: Vec<Vec<u8>>,
    pub interim: Option<Duration>,
    /// The session was authenticated by RADIUS (Acct-Authentic).
    pub radius: bool,
    /// Framed-IPv6-Prefix and Delegated-IPv6-Prefix in effect (RFC 3162
    /// §2.3, RFC 4818 §3: echoed in accounting).
    pub framed_ipv6_prefix: Option<ipv6nd::Prefix64>,
    pub delegated_ipv6_prefix: Option<(std::net::Ipv6Addr, u8)>,
}

/// Per-session extras, set by the session when RADIUS accepts it.
#[derive(Default)]
pub struct ExtrasTable(Mutex<HashMap<SessionId, Extras>>);

impl ExtrasTable {
    pub fn set(&self, id: SessionId, e: Extras) {
        self.0.lock().expect("extras lock").insert(id, e);
    }
    fn take(&self, id: SessionId) -> Extras {
        self.0
            .lock()
            .expect("extras lock")
            .remove(&id)
            .unwrap_or_default()
    }
}

struct Live {
    acct_session_id: String,
    /// The address the client connected to (Called-Station-Id).
    called: Option<std::net::IpAddr>,
    /// The address at Start (gone from the registry when the Stop is due).
    framed_ip: Option<std::net::Ipv4Addr>,
    extras: Extras,
    interim: Option<Duration>,
    next: Option<Instant>,
}

/// Stops the accounting task after the Stops are out, with Accounting-Off.
pub struct Accounting {
    stop: Option<oneshot::Sender<oneshot::Sender<()>>>,
}

impl Accounting {
    pub fn start(
        radius: Radius,
        registry: Arc<Registry>,
        extras: Arc<ExtrasTable>,
        listen: std::net::SocketAddr,
    ) -> Self {
        let (tx, rx) = oneshot::channel();
        let notices = registry.subscribe();
        crate::tasks::spawn(run(radius, registry, extras, notices, rx, listen));
        Accounting { stop: Some(tx) }
    }

    /// Sends what is pending and Accounting-Off, waiting at most `within`.
    pub async fn shutdown(mut self, within: Duration) {
        let Some(stop) = self.stop.take() else { return };
        let (done, wait) = oneshot::channel();
        if stop.send(done).is_ok() {
            let _ = tokio::time::timeout(within, wait).await;
        }
    }
}

fn now_unix() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
}

/// The common attributes of every record; `called`: the address the
/// client connected to (Called-Station-Id), none for the NAS's own records.
fn base(r: &Radius, status_type: u32, called: Option<std::net::IpAddr>) -> Request {
    let s = r.settings();
    let mut q = Request::new(Code::AccountingRequest);
    let p = &mut q.packet;
    p.push_u32(attr::ACCT_STATUS_TYPE, status_type);
    p.push(attr::NAS_IDENTIFIER, s.nas_identifier.as_bytes());
    if let Some(a) = s.nas_ip_address {
        p.push_ipv4(attr::NAS_IP_ADDRESS, a);
    }
    p.push_u32(attr::EVENT_TIMESTAMP, now_unix());
    p.push_u32(attr::ACCT_DELAY_TIME, 0);
    if let Some(a) = called {
        p.push(attr::CALLED_STATION_ID, a.to_canonical().to_string());
    }
    q
}

/// The listening address when it names one (not 0.0.0.0 or ::).
fn listen_ip(listen: std::net::SocketAddr) -> Option<std::net::IpAddr> {
    Some(listen.ip()).filter(|a| !a.is_unspecified())
}

/// A session's record (Start, Interim-Update or Stop).
fn session_record(
    r: &Radius,
    status_type: u32,
    listen: std::net::SocketAddr,
    info: &SessionInfo,
    live: &Live,
    cause: Option<EndCause>,
) -> Request {
    let mut q = base(r, status_type, live.called.or(listen_ip(listen)));
    let p = &mut q.packet;
    p.push(attr::ACCT_SESSION_ID, live.acct_session_id.as_bytes());
    p.push(attr::ACCT_MULTI_SESSION_ID, live.acct_session_id.as_bytes());
    if let Some(u) = &info.user {
        p.push(attr::USER_NAME, u.as_bytes());
    }
    p.push_u32(attr::NAS_PORT_TYPE, attr::PORT_VIRTUAL);
    p.push_u32(attr::SERVICE_TYPE, attr::SERVICE_FRAMED);
    p.push_u32(attr::FRAMED_PROTOCOL, attr::FRAMED_PPP);
    p.push_u32(attr::ACCT_AUTHENTIC, if live.extras.radius { 1 } else { 2 });
    let client = info
        .client
        .parse::<std::net::SocketAddr>()
        .map(|a| a.ip().to_canonical().to_string())
        .unwrap_or_else(|_| info.client.clone());
    p.push(attr::CALLING_STATION_ID, client);
    if let Some(a) = info.ipv4.or(live.framed_ip) {
        p.push_ipv4(attr::FRAMED_IP_ADDRESS, a);
    }
    for c in &live.extras.class {
        p.push(attr::CLASS, c.clone());
    }
    if let Some(f) = live.extras.framed_ipv6_prefix {
        p.push_ipv6_prefix(attr::FRAMED_IPV6_PREFIX, f.network(), 64);
    }
    if let Some((a, len)) = live.extras.delegated_ipv6_prefix {
        p.push_ipv6_prefix(attr::DELEGATED_IPV6_PREFIX, a, len);
    }
    if status_type != status::START {
        let t = &info.traffic;
        // rx is what came from the client: the port's input (RFC 2866 §5.3).
        p.push_u32(attr::ACCT_INPUT_OCTETS, t.rx_bytes as u32);
        p.push_u32(attr::ACCT_INPUT_GIGAWORDS, (t.rx_bytes >> 32) as u32);
        p.push_u32(attr::ACCT_OUTPUT_OCTETS, t.tx_bytes as u32);
        p.push_u32(attr::ACCT_OUTPUT_GIGAWORDS, (t.tx_bytes >> 32) as u32);
        p.push_u32(attr::ACCT_INPUT_PACKETS, t.rx_packets as u32);
        p.push_u32(attr::ACCT_OUTPUT_PACKETS, t.tx_packets as u32);
        p.push_u32(attr::ACCT_SESSION_TIME, info.uptime_s as u32);
    }
    if let Some(c) = cause {
        p.push_u32(attr::ACCT_TERMINATE_CAUSE, c.acct_terminate_cause());
    }
    q
}

/// The record in plain words, for the log line of an undelivered one.
fn describe(q: &Request) -> String {
    let p = &q.packet;
    let mut parts = Vec::new();
    let kind = match p.u32(attr::ACCT_STATUS_TYPE) {
        Some(status::START) => "Start",
        Some(status::STOP) => "Stop",
        Some(status::INTERIM_UPDATE) => "Interim-Update",
        Some(status::ACCOUNTING_ON) => "Accounting-On",
        Some(status::ACCOUNTING_OFF) => "Accounting-Off",
        _ => "record",
    };
    parts.push(format!("type={kind}"));
    let text = |t, name: &str, parts: &mut Vec<String>| {
        if let Some(v) = p.text(t) {
            parts.push(format!("{name}={v}"));
        }
    };
    text(attr::ACCT_SESSION_ID, "session", &mut parts);
    text(attr::USER_NAME, "user", &mut parts);
    text(attr::CALLING_STATION_ID, "client", &mut parts);
    if let Some(a) = p.ipv4(attr::FRAMED_IP_ADDRESS) {
        parts.push(format!("address={a}"));
    }
    for (t, name) in [
        (attr::FRAMED_IPV6_PREFIX, "ipv6_prefix"),
        (attr::DELEGATED_IPV6_PREFIX, "delegated_ipv6_prefix"),
    ] {
        if let Some((a, len)) = p.ipv6_prefix(t) {
            parts.push(format!("{name}={a}/{len}"));
        }
    }
    for (t, name) in [
        (attr::ACCT_INPUT_OCTETS, "input_octets"),
        (attr::ACCT_OUTPUT_OCTETS, "output_octets"),
        (attr::ACCT_SESSION_TIME, "session_time_s"),
    ] {
        if let Some(v) = p.u32(t) {
            parts.push(format!("{name}={v}"));
        }
    }
    if let Some(c) = p.u32(attr::ACCT_TERMINATE_CAUSE) {
        match attr::terminate::name(c) {
            Some(n) => parts.push(format!("terminate_cause={n}")),
            None => parts.push(format!("terminate_cause={c}")),
        }
    }
    parts.join(" ")
}

fn send(r: &Radius, q: Request, tasks: &mut JoinSet<()>) {
    let r = r.clone();
    tasks.spawn(async move {
        let what = describe(&q);
        match r.ask(q).await {
            Outcome::Reply(_) => debug!(record = %what, "accounting record acknowledged"),
            Outcome::NoResponse => warn!(
                record = %what,
                "accounting record not acknowledged by any RADIUS server; dropped"
            ),
        }
    });
}

async fn run(
    r: Radius,
    registry: Arc<Registry>,
    extras: Arc<ExtrasTable>,
    mut notices: mpsc::UnboundedReceiver<Notice>,
    mut stop: oneshot::Receiver<oneshot::Sender<()>>,
    listen: std::net::SocketAddr,
) {
    let mut tasks = JoinSet::new();
    send(
        &r,
        base(&r, status::ACCOUNTING_ON, listen_ip(listen)),
        &mut tasks,
    );
    let mut live: HashMap<SessionId, Live> = HashMap::new();
    let handle = |n: Notice, live: &mut HashMap<SessionId, Live>, tasks: &mut JoinSet<()>| match n {
        Notice::Up(info) => {
            let Some(entry) = registry.get(info.id) else {
                return;
            };
            let ex = extras.take(info.id);
            // The configured interval as it is now (a reload changes it
            // for sessions that start after it).
            let interim = ex.interim.or(r.settings().acct_interim_interval);
            let l = Live {
                acct_session_id: entry.acct_session_id(),
                called: entry.conn.called.map(|a| a.ip()),
                framed_ip: info.ipv4,
                extras: ex,
                interim,
                next: interim.map(|i| Instant::now() + i),
            };
            send(
                &r,
                session_record(&r, status::START, listen, &info, &l, None),
                tasks,
            );
            live.insert(info.id, l);
        }
        Notice::Ended {
            info,
            was_up,
            cause,
            ..
        } => {
            extras.take(info.id);
            if let (Some(l), true) = (live.remove(&info.id), was_up) {
                send(
                    &r,
                    session_record(&r, status::STOP, listen, &info, &l, Some(cause)),
                    tasks,
                );
            }
        }
    };
    let done = loop {
        let next = live.values().filter_map(|l| l.next).min();
        let sleep = async {
            match next {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            n = notices.recv() => match n {
                Some(n) => handle(n, &mut live, &mut tasks),
                None => break None,
            },
            _ = sleep => {
                let now = Instant::now();
                for (id, l) in live.iter_mut() {
                    if l.next.is_some_and(|t| t <= now) {
                        l.next = l.interim.map(|i| now + i);
                        if let Some(e) = registry.get(*id) {
                            let info = e.info();
                            send(&r, session_record(&r, status::INTERIM_UPDATE, listen, &info, l, None), &mut tasks);
                        }
                    }
                }
            }
            d = &mut stop => break d.ok(),
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    };
    // The Stops of the sessions that ended during shutdown first.
    while let Ok(n) = notices.try_recv() {
        handle(n, &mut live, &mut tasks);
    }
    send(
        &r,
        base(&r, status::ACCOUNTING_OFF, listen_ip(listen)),
        &mut tasks,
    );
    while tasks.join_next().await.is_some() {}
    if let Some(d) = done {
        let _ = d.send(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undelivered_record_names_the_ipv6_prefixes() {
        let mut q = Request::new(Code::AccountingRequest);
        q.packet
            .push_u32(attr::ACCT_STATUS_TYPE, status::START)
            .push(attr::USER_NAME, "grace")
            .push_ipv6_prefix(
                attr::FRAMED_IPV6_PREFIX,
                "2001:db8:0:7::".parse().unwrap(),
                64,
            )
            .push_ipv6_prefix(
                attr::DELEGATED_IPV6_PREFIX,
                "2001:db8:100::".parse().unwrap(),
                56,
            );
        assert_eq!(
            describe(&q),
            "type=Start user=grace ipv6_prefix=2001:db8:0:7::/64 delegated_ipv6_prefix=2001:db8:100::/56"
        );
    }
}
