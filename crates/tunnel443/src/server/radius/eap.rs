//! EAP pass-through over RADIUS (RFC 3579, `[radius] eap = "pass-through"`):
//! the peer's EAP-Response goes in EAP-Message attributes (split at 253
//! octets, §3.1) with the State of the previous Access-Challenge (RFC 2865
//! §5.24); the Message-Authenticator every Access-Request carries is
//! required here anyway (§3.2). An Access-Challenge's EAP-Message is
//! relayed to the peer; an Access-Accept gives EAP-Success and the MSK
//! MS-MPPE-Recv-Key | MS-MPPE-Send-Key (§2.6.5, RFC 2548 §2.4.2-3), from
//! which the PPP engine takes the SSTP HLAK.

use radius::attr;
use radius::{Code, Packet};

/// Adds the peer's EAP packet and the State to an Access-Request.
pub fn push_request(p: &mut Packet, packet: &[u8], state: &[u8]) {
    p.push_split(attr::EAP_MESSAGE, packet);
    if !state.is_empty() {
        p.push(attr::STATE, state);
    }
}

/// The verdict for an Access-Accept or Access-Challenge to a pass-through
/// request, or why it cannot be used. `response` is the peer's
/// EAP-Response the request carried.
pub fn verdict(reply: &radius::Reply, response: &[u8]) -> Result<ppp::Verdict, &'static str> {
    let p = &reply.packet;
    let eap = p.concat(attr::EAP_MESSAGE);
    let state = p.get(attr::STATE).map(<[u8]>::to_vec).unwrap_or_default();
    let id = response.get(1).copied().unwrap_or(0);
    match p.code {
        Code::AccessChallenge => {
            let packet = eap.ok_or("Access-Challenge without EAP-Message")?;
            Ok(ppp::Verdict::Eap {
                packet,
                msk: None,
                state,
            })
        }
        Code::AccessAccept => {
            let packet = match eap {
                Some(e) if e.first() == Some(&3) => e,
                Some(_) => return Err("Access-Accept whose EAP-Message is not EAP-Success"),
                // RFC 3579 §2.6.3 wants EAP-Success; make it when missing.
                None => vec![3, id, 0, 4],
            };
            let msk = reply.mppe_keys().map(|(send, recv)| [recv, send].concat());
            if msk.is_none() {
                tracing::warn!(
                    "RADIUS Access-Accept without MS-MPPE keys: the SSTP crypto binding will fail"
                );
            }
            Ok(ppp::Verdict::Eap {
                packet,
                msk,
                state: Vec::new(),
            })
        }
        _ => Err("not an Access-Accept or Access-Challenge"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eap_message_is_split_and_state_echoed() {
        let mut p = Packet::new(Code::AccessRequest, 0, [0; 16]);
        let eap: Vec<u8> = (0..600u32).map(|i| i as u8).collect();
        push_request(&mut p, &eap, b"st");
        let parts: Vec<usize> = p.all(attr::EAP_MESSAGE).map(<[u8]>::len).collect();
        assert_eq!(parts, [253, 253, 94]);
        assert_eq!(p.concat(attr::EAP_MESSAGE).unwrap(), eap);
        assert_eq!(p.get(attr::STATE), Some(&b"st"[..]));
        let mut first = Packet::new(Code::AccessRequest, 0, [0; 16]);
        push_request(&mut first, &[2, 1, 0, 5, 1], b"");
        assert_eq!(first.get(attr::STATE), None);
    }
}
