//! Dynamic Authorization (RFC 5176) server: `[radius] dae_listen`.
//!
//! A request is taken only from a configured client address (default: the
//! RADIUS servers, each with its secret; `dae_clients` overrides), with a
//! valid Request Authenticator and a valid Message-Authenticator (required:
//! BlastRADIUS); anything else is dropped with a log line and no answer.
//!
//! * Disconnect-Request: the sessions named by Acct-Session-Id, User-Name
//!   or Framed-IP-Address (all given must match) are ended with
//!   Acct-Terminate-Cause Admin-Reset; Disconnect-ACK, or Disconnect-NAK
//!   with Error-Cause 503 (Session-Context-Not-Found) or 402
//!   (Missing-Attribute: nothing identifies a session).
//! * CoA-Request: a new rate limit (Filter-Id `DOWN/UP` or
//!   Mikrotik-Rate-Limit) and/or Session-Timeout (counted from now) for the
//!   sessions named as above; CoA-ACK, or CoA-NAK with Error-Cause 503, or
//!   401 (Unsupported-Attribute) when it asks for neither.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use radius::attr::{self, error_cause};
use radius::{crypto, Code, Packet, Secret};
use tokio::net::UdpSocket;
use tracing::{info, warn};

use crate::server::registry::{EndCause, Entry, Registry, SessionId};

/// A change a CoA-Request asks of a running session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    pub rate: Option<radius::rate::RateLimit>,
    pub session_timeout: Option<std::time::Duration>,
}

/// Where a CoA reaches a running session: its pending change and what
/// wakes its driver.
#[derive(Default)]
pub struct Control {
    pub wake: Arc<tokio::sync::Notify>,
    pub pending: std::sync::Mutex<Option<Change>>,
}

/// The sessions a CoA can reach (those authorized by RADIUS).
#[derive(Default)]
pub struct Controls(std::sync::Mutex<std::collections::HashMap<SessionId, Arc<Control>>>);

impl Controls {
    pub fn insert(&self, id: SessionId, c: Arc<Control>) {
        self.0.lock().expect("controls lock").insert(id, c);
    }
    pub fn remove(&self, id: SessionId) {
        self.0.lock().expect("controls lock").remove(&id);
    }
    fn get(&self, id: SessionId) -> Option<Arc<Control>> {
        self.0.lock().expect("controls lock").get(&id).cloned()
    }
}

/// Who may send requests, with which secret.
#[derive(Debug, Clone)]
pub struct DaeClient {
    pub address: IpAddr,
    pub secret: Secret,
}

/// Binds the listener (an error names `radius.dae_listen`).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<UdpSocket> {
    UdpSocket::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("radius.dae_listen: binding {addr}: {e}"))
}

/// The sessions a request names; Err(error cause) if none can be.
fn select(reg: &Registry, p: &Packet) -> Result<Vec<Arc<Entry>>, u32> {
    let by_acct = p.text(attr::ACCT_SESSION_ID);
    let by_user = p.text(attr::USER_NAME);
    let by_ip = p.ipv4(attr::FRAMED_IP_ADDRESS);
    if by_acct.is_none() && by_user.is_none() && by_ip.is_none() {
        return Err(error_cause::MISSING_ATTRIBUTE);
    }
    let candidates = match (by_acct, by_user, by_ip) {
        (Some(a), _, _) => reg.by_acct_session_id(a).into_iter().collect(),
        (None, Some(u), _) => reg.by_user(u),
        (None, None, Some(ip)) => reg.by_address(IpAddr::V4(ip)),
        (None, None, None) => unreachable!("checked above"),
    };
    let found: Vec<_> = candidates
        .into_iter()
        .filter(|e| by_user.is_none_or(|u| e.user().as_deref() == Some(u)))
        .filter(|e| by_ip.is_none_or(|ip| e.has_address(IpAddr::V4(ip))))
        .collect();
    if found.is_empty() {
        Err(error_cause::SESSION_CONTEXT_NOT_FOUND)
    } else {
        Ok(found)
    }
}

/// The answer to one verified request (None: not a DAE request).
pub fn answer(reg: &Registry, controls: &Controls, p: &Packet) -> Option<Packet> {
    let (ack, nak) = match p.code {
        Code::DisconnectRequest => (Code::DisconnectAck, Code::DisconnectNak),
        Code::CoaRequest => (Code::CoaAck, Code::CoaNak),
        _ => return None,
    };
    let result = select(reg, p).and_then(|sessions| {
        if p.code == Code::CoaRequest {
            let change = Change {
                rate: radius::rate::from_reply(p),
                session_timeout: p
                    .u32(attr::SESSION_TIMEOUT)
                    .map(|v| std::time::Duration::from_secs(v.into())),
            };
            if change == Change::default() {
                return Err(error_cause::UNSUPPORTED_ATTRIBUTE);
            }
            let targets: Vec<_> = sessions.iter().filter_map(|e| controls.get(e.id)).collect();
            if targets.is_empty() {
                return Err(error_cause::SESSION_CONTEXT_NOT_FOUND);
            }
            for c in targets {
                *c.pending.lock().expect("pending lock") = Some(change.clone());
                c.wake.notify_one();
            }
            return Ok(());
        }
        for e in &sessions {
            info!(
                session = e.id,
                user = e.user().as_deref().unwrap_or("-"),
                "Disconnect-Request: ending the session"
            );
            e.kill(EndCause::AdminReset, "disconnected by the RADIUS server");
        }
        Ok(())
    });
    let mut reply = Packet::new(
        if result.is_ok() { ack } else { nak },
        p.identifier,
        [0; 16],
    );
    if let Err(cause) = result {
        reply.push_u32(attr::ERROR_CAUSE, cause);
    }
    Some(reply)
}

/// Serves requests until the task is dropped.
/// Runs the listener of `[radius] dae_listen` (`first`: bound at start, so
/// that a bad address stops the start) and follows reloads: a new address
/// is bound (if that fails the old listener stays, logged, naming the
/// field), none closes it; a new client list applies to the next request.
pub async fn serve(
    first: Option<(SocketAddr, UdpSocket)>,
    radius: super::Radius,
    reg: Arc<Registry>,
    controls: Arc<Controls>,
) {
    let mut settings = radius.watch();
    let start = |sock| {
        AbortOnDrop(crate::tasks::spawn(run(
            sock,
            radius.watch(),
            reg.clone(),
            controls.clone(),
        )))
    };
    let mut current = first.map(|(a, sock)| (a, start(sock)));
    loop {
        let want = settings.borrow_and_update().dae_listen;
        if want != current.as_ref().map(|c| c.0) {
            match want {
                None => {
                    if let Some((a, _)) = current.take() {
                        info!(listen = %a, "RADIUS dynamic authorization listener closed (reload)");
                    }
                }
                Some(addr) => match bind(addr).await {
                    Ok(sock) => {
                        // The old listener ends here.
                        drop(current.take());
                        info!(listen = %addr, "RADIUS dynamic authorization (Disconnect/CoA) listening");
                        current = Some((addr, start(sock)));
                    }
                    Err(e) => warn!(
                        error = %format!("{e:#}"),
                        "RADIUS dynamic authorization listener not moved; the old one stays"
                    ),
                },
            }
        }
        if settings.changed().await.is_err() {
            return;
        }
    }
}

/// A task that ends with its owner.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn run(
    sock: UdpSocket,
    settings: tokio::sync::watch::Receiver<Arc<crate::config::RadiusSettings>>,
    reg: Arc<Registry>,
    controls: Arc<Controls>,
) {
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, from) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                warn!(error = %e, "DAE socket read failed");
                continue;
            }
        };
        let ip = from.ip().to_canonical();
        let client = settings
            .borrow()
            .dae_clients
            .iter()
            .find(|c| c.address == ip)
            .cloned();
        let Some(c) = client else {
            warn!(from = %from, "DAE request from an address that is not a configured client; ignored");
            continue;
        };
        let req = match crypto::verify_request(&buf[..n], &c.secret, true) {
            Ok(p) => p,
            Err(e) => {
                warn!(from = %from, reason = %e, "DAE request dropped");
                continue;
            }
        };
        let Some(reply) = answer(&reg, &controls, &req) else {
            warn!(from = %from, code = %req.code, "DAE request of an unexpected kind; ignored");
            continue;
        };
        info!(from = %from, request = %req.code, answer = %reply.code, "dynamic authorization");
        match crypto::encode_reply(&reply, &req.authenticator, &c.secret) {
            Ok(bytes) => {
                let _ = sock.send_to(&bytes, from).await;
            }
            Err(e) => warn!(error = %e, "DAE answer not encoded"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::registry::{Conn, Protocol};

    #[test]
    fn disconnect_selects_sessions_and_naks_unknown() {
        let reg = Registry::new();
        let g = reg.register(
            Protocol::Sstp,
            Conn::plain("192.0.2.1:5000".parse().unwrap()),
        );
        g.set_user("alice");
        g.set_ipv4(Some("10.44.0.9".parse().unwrap()));
        let ask = |f: &dyn Fn(&mut Packet)| {
            let mut p = Packet::new(Code::DisconnectRequest, 7, [0; 16]);
            f(&mut p);
            answer(&reg, &Controls::default(), &p).unwrap()
        };
        let r = ask(&|p| {
            p.push(attr::USER_NAME, "bob");
        });
        assert_eq!(r.code, Code::DisconnectNak);
        assert_eq!(r.u32(attr::ERROR_CAUSE), Some(503));
        assert_eq!(ask(&|_| {}).u32(attr::ERROR_CAUSE), Some(402));
        // User and address must both match.
        let r = ask(&|p| {
            p.push(attr::USER_NAME, "alice");
            p.push_ipv4(attr::FRAMED_IP_ADDRESS, "10.44.0.8".parse().unwrap());
        });
        assert_eq!(r.code, Code::DisconnectNak);
        let controls = Controls::default();
        let mut coa = Packet::new(Code::CoaRequest, 1, [0; 16]);
        coa.push(attr::USER_NAME, "alice");
        assert_eq!(
            answer(&reg, &controls, &coa)
                .unwrap()
                .u32(attr::ERROR_CAUSE),
            Some(401)
        );
        coa.push(attr::FILTER_ID, "2000/1000");
        // Not a RADIUS-authorized session: nothing to change.
        assert_eq!(
            answer(&reg, &controls, &coa)
                .unwrap()
                .u32(attr::ERROR_CAUSE),
            Some(503)
        );
        let c = Arc::new(Control::default());
        controls.insert(g.id(), c.clone());
        assert_eq!(answer(&reg, &controls, &coa).unwrap().code, Code::CoaAck);
        let change = c.pending.lock().unwrap().take().unwrap();
        assert_eq!(change.rate.unwrap().down, 2_000_000);
        assert_eq!(change.session_timeout, None);
        assert!(g.kill_reason().is_none());
        let acct = g.entry.acct_session_id();
        let r = ask(&|p| {
            p.push(attr::ACCT_SESSION_ID, acct.as_str());
        });
        assert_eq!(r.code, Code::DisconnectAck);
        assert_eq!(r.identifier, 7);
        assert_eq!(
            g.kill_reason().as_deref(),
            Some("disconnected by the RADIUS server")
        );
    }

    /// CoA Session-Timeout reaches the session; Disconnect by
    /// Framed-IP-Address alone.
    #[test]
    fn coa_session_timeout_and_disconnect_by_address() {
        let reg = Registry::new();
        let g = reg.register(
            Protocol::Sstp,
            Conn::plain("192.0.2.1:5000".parse().unwrap()),
        );
        g.set_user("alice");
        g.set_ipv4(Some("10.44.0.9".parse().unwrap()));
        let controls = Controls::default();
        let c = Arc::new(Control::default());
        controls.insert(g.id(), c.clone());
        let mut coa = Packet::new(Code::CoaRequest, 1, [0; 16]);
        coa.push_ipv4(attr::FRAMED_IP_ADDRESS, "10.44.0.9".parse().unwrap())
            .push_u32(attr::SESSION_TIMEOUT, 30);
        assert_eq!(answer(&reg, &controls, &coa).unwrap().code, Code::CoaAck);
        let change = c.pending.lock().unwrap().take().unwrap();
        assert_eq!(
            change.session_timeout,
            Some(std::time::Duration::from_secs(30))
        );
        assert_eq!(change.rate, None);
        let mut d = Packet::new(Code::DisconnectRequest, 2, [0; 16]);
        d.push_ipv4(attr::FRAMED_IP_ADDRESS, "10.44.0.8".parse().unwrap());
        assert_eq!(
            answer(&reg, &controls, &d).unwrap().code,
            Code::DisconnectNak
        );
        assert!(g.kill_reason().is_none());
        let mut d = Packet::new(Code::DisconnectRequest, 3, [0; 16]);
        d.push_ipv4(attr::FRAMED_IP_ADDRESS, "10.44.0.9".parse().unwrap());
        assert_eq!(
            answer(&reg, &controls, &d).unwrap().code,
            Code::DisconnectAck
        );
        assert!(g.kill_reason().is_some());
    }
}
