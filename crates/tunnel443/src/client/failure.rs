//! Why a client connection ended, in plain words, and the exit code of
//! each kind (README, "SSTP client": 3 TLS, 4 authentication, 5 the server
//! refused, aborted or shut down the call, 6 timeout, 7 proxy, 1 other).
//!
//! Each protocol names itself: an IP-HTTPS refusal never speaks of an SSTP
//! call. The reasons the server sends are passed on: the data of an LCP
//! Terminate-Request (RFC 1661 §5.5), the Status Info of an SSTP Call
//! Abort/Connect Nak (MS-SSTP §2.2.8), the final Router Advertisement of an
//! IP-HTTPS server (router lifetime 0, RFC 4861 §6.2.5).

use std::fmt;

/// The tunnel protocol, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Sstp,
    IpHttps,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Sstp => "SSTP call",
            Protocol::IpHttps => "IP-HTTPS connection",
        })
    }
}

/// Why a connection attempt failed; the process exit code tells the kind.
#[derive(Debug)]
pub enum Failure {
    Tls(String),
    Auth(String),
    /// The server refused the call (SSTP Call Connect Nak, an HTTP error).
    Refused(Protocol, String),
    /// The server aborted the call (SSTP Call Abort).
    Aborted(Protocol, String),
    /// The server ended the session on purpose (LCP Terminate-Request,
    /// SSTP Call Disconnect, an IP-HTTPS close after its final Router
    /// Advertisement): with the reason it gave, if any.
    ServerShutdown(Protocol, Option<String>),
    Timeout(String),
    Proxy(String),
    /// The proxy refused us for good (403, or 407 with our credentials).
    ProxyRefused(String),
    Other(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Tls(s) => write!(f, "TLS: {s}"),
            Failure::Auth(s) => write!(f, "authentication failed: {s}"),
            Failure::Refused(p, s) => write!(f, "the server refused the {p}: {s}"),
            Failure::Aborted(p, s) => write!(f, "the server aborted the {p}: {s}"),
            Failure::ServerShutdown(p, None) => write!(f, "the server shut down the {p}"),
            Failure::ServerShutdown(p, Some(r)) => {
                write!(f, "the server shut down the {p} (reason: {r})")
            }
            Failure::Timeout(s) => write!(f, "timed out: {s}"),
            Failure::Proxy(s) | Failure::ProxyRefused(s) => write!(f, "proxy: {s}"),
            Failure::Other(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for Failure {}

impl Failure {
    /// A failed dial (directly or through the proxy chain): a proxy's
    /// failure is exit 7 (for good when it refused us), anything else 1.
    pub fn dial(e: crate::dial::DialError) -> Failure {
        use crate::dial::{DialError as E, DialFailure as K};
        match (e.failure(), &e) {
            (K::Proxy, E::ProxyDenied { .. } | E::ProxyAuthRequired { .. }) => {
                Failure::ProxyRefused(e.to_string())
            }
            (K::Proxy, _) => Failure::Proxy(e.to_string()),
            (K::Target | K::Usage, _) => Failure::Other(e.to_string()),
        }
    }

    /// Exit codes: 3 TLS, 4 auth, 5 refused/aborted/shut down by the
    /// server, 6 timeout, 7 proxy, 1 other.
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::Tls(_) => 3,
            Failure::Auth(_) => 4,
            Failure::Refused(..) | Failure::Aborted(..) | Failure::ServerShutdown(..) => 5,
            Failure::Timeout(_) => 6,
            Failure::Proxy(_) | Failure::ProxyRefused(_) => 7,
            Failure::Other(_) => 1,
        }
    }

    /// Whether trying again could help (a wrong password or an untrusted
    /// certificate will not fix itself; a server that shut down comes back).
    pub fn retryable(&self) -> bool {
        !matches!(
            self,
            Failure::Tls(_) | Failure::Auth(_) | Failure::ProxyRefused(_)
        )
    }

    /// Why PPP authentication failed, as the client sees it.
    pub fn auth(reason: &ppp::AuthFailure) -> Failure {
        use ppp::AuthFailure as A;
        Failure::Auth(match reason {
            A::Rejected {
                message,
                code: Some(code),
            } => {
                // MS-CHAPv2 E= code (RFC 2759 §6), e.g. 648 password expired.
                let words = match ppp::auth::mschapv2::error_words(*code) {
                    Some(w) => format!(": {w}"),
                    None => String::new(),
                };
                let mut t = format!("the server refused the login{words} (E={code})");
                if !message.trim().is_empty() {
                    t += &format!("; the server said \"{}\"", printable(message));
                }
                t
            }
            A::Rejected { message, .. } if message.trim().is_empty() => {
                "the server rejected the user name or password".into()
            }
            A::Rejected { message, .. } => format!("the server said \"{}\"", printable(message)),
            A::Timeout => "the server did not answer in time".into(),
            A::MethodRefused => "no authentication method in common with the server".into(),
            A::ServerNotAuthenticated => {
                "the server could not prove that it knows the password".into()
            }
            A::NoCredentials => "our credentials do not suit the server's method".into(),
            A::Tls { .. } | A::Peap { .. } => reason.to_string(),
            other => crate::tls::words(&format!("{other:?}")),
        })
    }

    /// Why the PPP link went down; `terminate_reason` is the text of the
    /// server's LCP Terminate-Request, if one came.
    pub fn ppp_down(reason: ppp::LinkDownReason, terminate_reason: Option<String>) -> Failure {
        use ppp::LinkDownReason as R;
        match reason {
            R::AuthFailed => Failure::Auth("the server rejected the user name or password".into()),
            R::AuthNotNegotiated => {
                Failure::Auth("no authentication method in common with the server".into())
            }
            R::EchoTimeout => Failure::Timeout("the server stopped answering".into()),
            R::PeerTerminated => Failure::ServerShutdown(Protocol::Sstp, terminate_reason),
            R::NoNetworkProtocols => Failure::Refused(
                Protocol::Sstp,
                "no address was assigned (IPCP and IPv6CP failed; is its pool exhausted?)".into(),
            ),
            R::NegotiationFailed => Failure::Other("PPP negotiation with the server failed".into()),
            R::Renegotiation => Failure::Other("the server restarted PPP negotiation".into()),
            R::Loopback => Failure::Other("the PPP link appears looped back".into()),
            R::LowerLayerDown => Failure::Other("the connection to the server was lost".into()),
            R::LocalClose => Failure::Other("the PPP link was closed".into()),
            other => Failure::Other(format!(
                "PPP link down: {}",
                crate::tls::words(&format!("{other:?}"))
            )),
        }
    }

    /// Why the SSTP layer closed (MS-SSTP §3.2); `terminate_reason` as in
    /// [`Failure::ppp_down`].
    pub fn sstp_closed(reason: &sstp::CloseReason, terminate_reason: Option<String>) -> Failure {
        use sstp::CloseReason as R;
        let p = Protocol::Sstp;
        match reason {
            R::Disconnected { by_peer: true } => Failure::ServerShutdown(p, terminate_reason),
            R::Nak { statuses } => {
                let why: Vec<String> = statuses.iter().map(status_words).collect();
                Failure::Refused(
                    p,
                    if why.is_empty() {
                        "Call Connect Request not acknowledged".into()
                    } else {
                        format!("Call Connect Request not acknowledged ({})", why.join("; "))
                    },
                )
            }
            R::PeerAbort { status: Some(s) } => Failure::Aborted(p, status_words(s)),
            R::PeerAbort { status: None } => Failure::Aborted(p, "no reason given".into()),
            R::Timeout => Failure::Timeout("SSTP negotiation".into()),
            R::HelloTimeout => {
                Failure::Timeout("the server stopped answering (no SSTP Echo Response)".into())
            }
            R::LocalAbort { status } => Failure::Other(format!(
                "the client aborted the SSTP call: {}",
                status_words(status)
            )),
            R::Delineation(e) => {
                Failure::Other(format!("the server sent an undecodable SSTP stream: {e}"))
            }
            R::LowerLayerClosed => Failure::Other("the HTTPS connection closed".into()),
            other => Failure::Other(other.to_string()),
        }
    }
}

/// An SSTP Status Info in words: "negotiation timeout", "value not
/// supported (crypto binding attribute)".
pub fn status_words(s: &sstp::wire::StatusInfo) -> String {
    let status = match s.status {
        sstp::wire::Status::Unknown(n) => format!("status {n}"),
        st => crate::tls::words(&format!("{st:?}")),
    };
    match s.attrib_id {
        sstp::wire::AttributeId::NoError => status,
        sstp::wire::AttributeId::Unknown(n) => format!("{status} (attribute {n})"),
        a => format!(
            "{status} ({} attribute)",
            crate::tls::words(&format!("{a:?}"))
        ),
    }
}

/// Peer-supplied text made safe to print: no control characters, at most
/// 200 characters.
fn printable(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_shutdown_is_exit_5_worth_a_retry() {
        let f = Failure::ppp_down(
            ppp::LinkDownReason::PeerTerminated,
            Some("server shutting down".into()),
        );
        assert_eq!(
            f.to_string(),
            "the server shut down the SSTP call (reason: server shutting down)"
        );
        assert_eq!(f.exit_code(), 5);
        assert!(f.retryable());
        let f = Failure::sstp_closed(&sstp::CloseReason::Disconnected { by_peer: true }, None);
        assert_eq!(f.to_string(), "the server shut down the SSTP call");
        let f = Failure::ServerShutdown(Protocol::IpHttps, None);
        assert_eq!(
            f.to_string(),
            "the server shut down the IP-HTTPS connection"
        );
    }

    #[test]
    fn each_protocol_names_itself() {
        let ip = Failure::Refused(Protocol::IpHttps, "HTTP 403 Forbidden".into()).to_string();
        assert_eq!(
            ip,
            "the server refused the IP-HTTPS connection: HTTP 403 Forbidden"
        );
        let s = Failure::sstp_closed(
            &sstp::CloseReason::Nak {
                statuses: vec![sstp::wire::StatusInfo::new(
                    sstp::wire::AttributeId::CryptoBindingReq,
                    sstp::wire::Status::ValueNotSupported,
                )],
            },
            None,
        );
        assert_eq!(
            s.to_string(),
            "the server refused the SSTP call: Call Connect Request not acknowledged \
             (value not supported (crypto binding req attribute))"
        );
        assert_eq!(s.exit_code(), 5);
    }

    #[test]
    fn no_debug_forms() {
        let f = Failure::auth(&ppp::AuthFailure::Rejected {
            message: "Authentication failed".into(),
            code: None,
        });
        assert_eq!(
            f.to_string(),
            "authentication failed: the server said \"Authentication failed\""
        );
        let f = Failure::auth(&ppp::AuthFailure::Rejected {
            message: "Password expired\r\n".into(),
            code: Some(648),
        });
        assert_eq!(
            f.to_string(),
            "authentication failed: the server refused the login: password expired (E=648); \
             the server said \"Password expired\""
        );
        for (code, words) in [
            (646, "restricted logon hours (E=646)"),
            (647, "account disabled (E=647)"),
            (649, "no dial-in permission (E=649)"),
            (691, "wrong user name or password (E=691)"),
        ] {
            let f = Failure::auth(&ppp::AuthFailure::Rejected {
                message: String::new(),
                code: Some(code),
            });
            assert_eq!(
                f.to_string(),
                format!("authentication failed: the server refused the login: {words}")
            );
        }
        let f = Failure::auth(&ppp::AuthFailure::Rejected {
            message: String::new(),
            code: Some(1234),
        });
        assert_eq!(
            f.to_string(),
            "authentication failed: the server refused the login (E=1234)"
        );
        let abort = Failure::sstp_closed(
            &sstp::CloseReason::PeerAbort {
                status: Some(sstp::wire::StatusInfo::new(
                    sstp::wire::AttributeId::NoError,
                    sstp::wire::Status::NegotiationTimeout,
                )),
            },
            None,
        );
        assert_eq!(
            abort.to_string(),
            "the server aborted the SSTP call: negotiation timeout"
        );
        for f in [
            Failure::auth(&ppp::AuthFailure::ServerNotAuthenticated),
            Failure::ppp_down(ppp::LinkDownReason::NoNetworkProtocols, None),
            Failure::sstp_closed(&sstp::CloseReason::HelloTimeout, None),
        ] {
            let t = f.to_string();
            assert!(!t.contains('{') && !t.contains("::"), "{t}");
        }
    }
}
