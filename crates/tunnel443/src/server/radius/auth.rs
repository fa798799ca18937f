//! Authentication through RADIUS: the peer's PPP proof as an Access-Request
//! (PAP: User-Password, RFC 2865 §5.2; CHAP-MD5: CHAP-Password and
//! CHAP-Challenge, §5.3 and §5.40; MS-CHAPv2 and EAP-MSCHAPv2:
//! MS-CHAP-Challenge and MS-CHAP2-Response, RFC 2548 §2.3.2) and the reply
//! as a [`ppp::Verdict`] (MS-CHAP2-Success and MS-MPPE-Send/Recv-Key give
//! the MS-CHAPv2 accept, hence the SSTP HLAK) plus the [`Authz`] the
//! session applies. EAP pass-through (EAP-Message, State) is in
//! [`super::eap`].

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use radius::attr::{self, ms};
use radius::{Code, Packet, Request};

use crate::config::RadiusSettings;

/// What an Access-Accept says about the session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Authz {
    /// Framed-IP-Address, unless it asks for the pool (255.255.255.254) or
    /// the client's choice (255.255.255.255, which we do not offer).
    pub framed_ip: Option<Ipv4Addr>,
    /// Framed-Pool: the name of one of `ipv4.pools`.
    pub framed_pool: Option<String>,
    /// Framed-MTU (64 to 65535): the largest packet sent to the client.
    pub framed_mtu: Option<u16>,
    /// Framed-Route: IPv4 networks behind the client.
    pub framed_routes: Vec<(Ipv4Addr, u8)>,
    pub session_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    /// MS-Primary/Secondary-DNS-Server.
    pub dns: Vec<Ipv4Addr>,
    /// Class, to echo in accounting.
    pub class: Vec<Vec<u8>>,
    pub rate: Option<radius::rate::RateLimit>,
    pub acct_interim: Option<Duration>,
    /// Framed-IPv6-Prefix (RFC 3162 §2.3): the /64 advertised to the
    /// client instead of the configured one (other lengths are ignored:
    /// SLAAC needs a /64).
    pub framed_ipv6_prefix: Option<ipv6nd::Prefix64>,
    /// Delegated-IPv6-Prefix (RFC 4818): a network routed to the client.
    pub delegated_ipv6_prefix: Option<(std::net::Ipv6Addr, u8)>,
}

/// The Access-Request for a proof.
pub fn access_request(s: &RadiusSettings, req: &ppp::AuthRequest, peer: IpAddr) -> Request {
    let mut r = Request::new(Code::AccessRequest);
    let p = &mut r.packet;
    p.push(attr::USER_NAME, req.username.as_bytes());
    match &req.proof {
        ppp::Proof::Pap { password } => r.password = Some(password.as_bytes().to_vec()),
        ppp::Proof::ChapMd5 {
            id,
            challenge,
            response,
        } => {
            let mut v = vec![*id];
            v.extend_from_slice(response);
            p.push(attr::CHAP_PASSWORD, v);
            p.push(attr::CHAP_CHALLENGE, challenge.clone());
        }
        ppp::Proof::MsChapV2 {
            authenticator_challenge,
            peer_challenge,
            nt_response,
            ..
        } => {
            p.push_vendor(ms::VENDOR, ms::CHAP_CHALLENGE, authenticator_challenge);
            p.push_vendor(
                ms::VENDOR,
                ms::CHAP2_RESPONSE,
                &ms::chap2_response(0, peer_challenge, nt_response),
            );
        }
        ppp::Proof::Eap { packet, state } => super::eap::push_request(p, packet, state),
        _ => {}
    }
    let p = &mut r.packet;
    p.push_u32(attr::SERVICE_TYPE, attr::SERVICE_FRAMED);
    p.push_u32(attr::FRAMED_PROTOCOL, attr::FRAMED_PPP);
    p.push_u32(attr::NAS_PORT_TYPE, attr::PORT_VIRTUAL);
    p.push(attr::NAS_IDENTIFIER, s.nas_identifier.as_bytes());
    if let Some(a) = s.nas_ip_address {
        p.push_ipv4(attr::NAS_IP_ADDRESS, a);
    }
    p.push(attr::CALLING_STATION_ID, peer.to_string());
    r
}

/// Why an accept could not be used.
fn reject(why: &str) -> ppp::Verdict {
    tracing::warn!(
        reason = %why,
        "RADIUS Access-Accept not usable; login refused"
    );
    ppp::Verdict::reject("Authentication failed")
}

/// The verdict for an Access-Reject: Reply-Message (or "Authentication
/// failed") for the peer, and for MS-CHAPv2 the MS-CHAP-Error text.
fn rejected(p: &Packet, proof: &ppp::Proof) -> ppp::Verdict {
    let msg = p
        .text(attr::REPLY_MESSAGE)
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "Authentication failed".into());
    let mschap_error = match proof {
        ppp::Proof::MsChapV2 { .. } => mschap_error(p),
        _ => None,
    };
    ppp::Verdict::reject_mschap(msg, mschap_error)
}

/// Longest MS-CHAP-Error text passed on (the Failure packet's M= is cut
/// to 200 characters by the PPP engine).
const MAX_MSCHAP_ERROR: usize = 253;

/// MS-CHAP-Error (RFC 2548 §2.1.5) of a reject without its Ident byte,
/// when it carries an E= code; a malformed one is logged and left out (the
/// peer then gets our E=691).
fn mschap_error(p: &Packet) -> Option<Vec<u8>> {
    let v = p.vendor(ms::VENDOR, ms::CHAP_ERROR)?;
    let text = v.get(1..).unwrap_or_default();
    let text = &text[..text.len().min(MAX_MSCHAP_ERROR)];
    if ppp::auth::mschapv2::backend_failure(text).is_none() {
        tracing::warn!(
            length = v.len(),
            "MS-CHAP-Error without an E= code in the Access-Reject; sending E=691"
        );
        return None;
    }
    Some(text.to_vec())
}

/// The verdict and authorization in a verified reply.
pub fn verdict(reply: &radius::Reply, proof: &ppp::Proof) -> (ppp::Verdict, Option<Authz>) {
    let p = &reply.packet;
    if let (ppp::Proof::Eap { packet, .. }, Code::AccessAccept | Code::AccessChallenge) =
        (proof, p.code)
    {
        return match super::eap::verdict(reply, packet) {
            Ok(v) if p.code == Code::AccessAccept => (v, Some(authz(p))),
            Ok(v) => (v, None),
            Err(why) => (reject(why), None),
        };
    }
    match p.code {
        Code::AccessAccept => {}
        Code::AccessChallenge => {
            return (
                reject("Access-Challenge (only with radius.eap = \"pass-through\")"),
                None,
            )
        }
        _ => return (rejected(p, proof), None),
    }
    let verdict = match proof {
        ppp::Proof::MsChapV2 { .. } => {
            let Some(success) = p.vendor(ms::VENDOR, ms::CHAP2_SUCCESS) else {
                return (reject("no MS-CHAP2-Success"), None);
            };
            let Some((send, recv)) = reply.mppe_keys() else {
                return (reject("no MS-MPPE-Send-Key/Recv-Key"), None);
            };
            match ppp::MsChapV2Accept::from_radius(success, &send, &recv) {
                Some(a) => ppp::Verdict::accept_mschapv2(a),
                None => return (reject("malformed MS-CHAP2-Success or MPPE keys"), None),
            }
        }
        _ => ppp::Verdict::accept(),
    };
    (verdict, Some(authz(p)))
}

/// The reply attributes we honour.
pub fn authz(p: &Packet) -> Authz {
    let secs = |t| {
        p.u32(t)
            .filter(|&v| v > 0)
            .map(|v| Duration::from_secs(v.into()))
    };
    let framed_ip = p
        .ipv4(attr::FRAMED_IP_ADDRESS)
        .filter(|a| *a != attr::FRAMED_IP_NAS_CHOOSES && *a != attr::FRAMED_IP_USER_CHOOSES);
    let dns = [ms::PRIMARY_DNS_SERVER, ms::SECONDARY_DNS_SERVER]
        .iter()
        .filter_map(|&t| {
            let b: [u8; 4] = p.vendor(ms::VENDOR, t)?.try_into().ok()?;
            Some(Ipv4Addr::from(b))
        })
        .collect();
    let framed_pool = p
        .text(attr::FRAMED_POOL)
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    let framed_routes = p
        .all(attr::FRAMED_ROUTE)
        .filter_map(|v| {
            let text = String::from_utf8_lossy(v);
            let r = crate::server::framed_route::parse(&text);
            if r.is_none() {
                tracing::warn!(value = %text.trim(), "Framed-Route not understood; ignored");
            }
            r
        })
        .collect();
    let framed_mtu = p
        .u32(attr::FRAMED_MTU)
        .and_then(|m| u16::try_from(m).ok())
        .filter(|m| *m >= 64);
    let framed_ipv6_prefix = match p
        .get(attr::FRAMED_IPV6_PREFIX)
        .map(|v| (v, radius::packet::decode_ipv6_prefix(v)))
    {
        None => None,
        Some((_, Some((a, 64)))) => Some(ipv6nd::Prefix64::of(a)),
        Some((_, Some((a, len)))) => {
            tracing::warn!(prefix = %format!("{a}/{len}"), "Framed-IPv6-Prefix is not a /64; ignored");
            None
        }
        Some((v, None)) => {
            tracing::warn!(length = v.len(), "Framed-IPv6-Prefix malformed; ignored");
            None
        }
    };
    let delegated_ipv6_prefix = match p.get(attr::DELEGATED_IPV6_PREFIX) {
        None => None,
        Some(v) => {
            let d = radius::packet::decode_ipv6_prefix(v);
            if d.is_none() {
                tracing::warn!(length = v.len(), "Delegated-IPv6-Prefix malformed; ignored");
            }
            d
        }
    };
    Authz {
        framed_ipv6_prefix,
        delegated_ipv6_prefix,
        framed_ip,
        framed_mtu,
        framed_pool,
        framed_routes,
        session_timeout: secs(attr::SESSION_TIMEOUT),
        idle_timeout: secs(attr::IDLE_TIMEOUT),
        dns,
        class: p.all(attr::CLASS).map(<[u8]>::to_vec).collect(),
        rate: radius::rate::from_reply(p),
        acct_interim: secs(attr::ACCT_INTERIM_INTERVAL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mschapv2_proof() -> ppp::Proof {
        ppp::Proof::MsChapV2 {
            authenticator_challenge: [1; 16],
            peer_challenge: [2; 16],
            nt_response: [3; 24],
            name: "alice".into(),
        }
    }

    fn reject_with(error: Option<&[u8]>) -> Packet {
        let mut p = Packet::new(Code::AccessReject, 0, [0; 16]);
        p.push(attr::REPLY_MESSAGE, "Go away");
        if let Some(e) = error {
            p.push_vendor(ms::VENDOR, ms::CHAP_ERROR, e);
        }
        p
    }

    /// RFC 2548 §2.1.5: the MS-CHAP-Error of an Access-Reject, after its
    /// Ident byte, goes into the verdict for MS-CHAPv2 only; a malformed
    /// one (no E= code) is left out.
    #[test]
    fn reject_carries_ms_chap_error() {
        let text = b"E=648 R=0 C=00112233445566778899AABBCCDDEEFF V=3 M=Password expired";
        let mut v = vec![7u8];
        v.extend_from_slice(text);
        assert_eq!(
            rejected(&reject_with(Some(&v)), &mschapv2_proof()),
            ppp::Verdict::reject_mschap("Go away", Some(text.to_vec()))
        );
        for bad in [&b""[..], b"\x07", b"\x07M=E=648", b"\x07hello"] {
            assert_eq!(
                rejected(&reject_with(Some(bad)), &mschapv2_proof()),
                ppp::Verdict::reject("Go away"),
                "{bad:?}"
            );
        }
        assert_eq!(
            rejected(&reject_with(None), &mschapv2_proof()),
            ppp::Verdict::reject("Go away")
        );
        let pap = ppp::Proof::Pap {
            password: ppp::Password::new("x"),
        };
        assert_eq!(
            rejected(&reject_with(Some(&v)), &pap),
            ppp::Verdict::reject("Go away")
        );
    }

    #[test]
    fn authz_attributes() {
        let mut p = Packet::new(Code::AccessAccept, 0, [0; 16]);
        p.push_ipv4(attr::FRAMED_IP_ADDRESS, Ipv4Addr::new(10, 1, 2, 3))
            .push_u32(attr::SESSION_TIMEOUT, 60)
            .push_u32(attr::IDLE_TIMEOUT, 0)
            .push(attr::CLASS, "c1")
            .push(attr::FILTER_ID, "1000/500")
            .push(attr::FRAMED_POOL, "staff")
            .push_u32(attr::FRAMED_MTU, 1200)
            .push(attr::FRAMED_ROUTE, "10.50.0.0/24 0.0.0.0 1")
            .push(attr::FRAMED_ROUTE, "bogus")
            .push_vendor(ms::VENDOR, ms::PRIMARY_DNS_SERVER, &[8, 8, 8, 8]);
        let a = authz(&p);
        assert_eq!(a.framed_ip, Some(Ipv4Addr::new(10, 1, 2, 3)));
        assert_eq!(a.framed_pool.as_deref(), Some("staff"));
        assert_eq!(a.framed_mtu, Some(1200));
        assert_eq!(a.framed_routes, [(Ipv4Addr::new(10, 50, 0, 0), 24)]);
        assert_eq!(a.session_timeout, Some(Duration::from_secs(60)));
        assert_eq!(a.idle_timeout, None);
        assert_eq!(a.dns, [Ipv4Addr::new(8, 8, 8, 8)]);
        assert_eq!(a.class, [b"c1".to_vec()]);
        assert_eq!(a.rate.unwrap().down, 1_000_000);
        // 255.255.255.254 (the NAS chooses) and 255.255.255.255 (the
        // user chooses, which we do not offer): an address from the pool.
        for pool in [attr::FRAMED_IP_NAS_CHOOSES, attr::FRAMED_IP_USER_CHOOSES] {
            let mut p = Packet::new(Code::AccessAccept, 0, [0; 16]);
            p.push_ipv4(attr::FRAMED_IP_ADDRESS, pool);
            assert_eq!(authz(&p).framed_ip, None, "{pool}");
        }
        let mut p = Packet::new(Code::AccessAccept, 0, [0; 16]);
        p.push_ipv4(attr::FRAMED_IP_ADDRESS, attr::FRAMED_IP_NAS_CHOOSES);
        assert_eq!(authz(&p).framed_ipv6_prefix, None);
        assert_eq!(authz(&p).delegated_ipv6_prefix, None);
    }

    #[test]
    fn ipv6_prefix_attributes() {
        let mut p = Packet::new(Code::AccessAccept, 0, [0; 16]);
        p.push_ipv6_prefix(
            attr::FRAMED_IPV6_PREFIX,
            "2001:db8:0:7::".parse().unwrap(),
            64,
        )
        .push_ipv6_prefix(
            attr::DELEGATED_IPV6_PREFIX,
            "2001:db8:100::".parse().unwrap(),
            56,
        );
        let a = authz(&p);
        assert_eq!(
            a.framed_ipv6_prefix.map(|p| p.to_string()).as_deref(),
            Some("2001:db8:0:7::/64")
        );
        assert_eq!(
            a.delegated_ipv6_prefix,
            Some(("2001:db8:100::".parse().unwrap(), 56))
        );
        // A Framed-IPv6-Prefix that is not a /64 cannot be advertised for
        // SLAAC; malformed values are ignored.
        let mut p = Packet::new(Code::AccessAccept, 0, [0; 16]);
        p.push_ipv6_prefix(attr::FRAMED_IPV6_PREFIX, "2001:db8::".parse().unwrap(), 48)
            .push(attr::DELEGATED_IPV6_PREFIX, [0u8, 130]);
        let a = authz(&p);
        assert_eq!(a.framed_ipv6_prefix, None);
        assert_eq!(a.delegated_ipv6_prefix, None);
    }
}
