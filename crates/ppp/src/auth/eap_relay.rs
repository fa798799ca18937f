//! EAP pass-through (RFC 3579 §2.1, RFC 3748 §2.3): the authenticator
//! sends EAP-Request/Identity itself, then relays every EAP-Response of
//! the peer to a backend (RADIUS) as [`super::Proof::Eap`] and every
//! packet of the backend ([`super::Verdict::Eap`]) back to the peer, so
//! that methods we do not implement (PEAP, EAP-TLS with the backend's CA,
//! EAP-MSCHAPv2 run by the backend) work.
//!
//! The HLAK of the SSTP crypto binding (MS-SSTP §3.2.5.2.2: for EAP the
//! first 32 octets of the MSK) comes from the MSK the backend hands over,
//! RFC 3579 §2.6.5 / RFC 5216 §2.3: MS-MPPE-Recv-Key | MS-MPPE-Send-Key.
//! For EAP-MSCHAPv2 those keys are 16 octets each and the result equals
//! the MS-CHAPv2 server HLAK (MasterReceiveKey | MasterSendKey).

use super::eap::{self, Code};
use crate::frame::Protocol;
use crate::wire::control_frame;

/// A backend packet checked for relaying: its code, its Identifier and the
/// full PPP frame to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Relay {
    pub(crate) code: Code,
    pub(crate) id: u8,
    pub(crate) frame: Vec<u8>,
}

/// Checks a backend EAP packet (Request, Success or Failure; RFC 3748 §4)
/// and frames it for the peer; `None` for anything else or malformed.
pub(crate) fn relay(packet: &[u8]) -> Option<Relay> {
    let p = eap::parse(packet).ok()?;
    if !matches!(p.code, Code::Request | Code::Success | Code::Failure) {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([*packet.get(2)?, *packet.get(3)?]));
    let data = packet.get(4..len)?;
    Some(Relay {
        code: p.code,
        id: p.id,
        frame: control_frame(Protocol::Eap, u8::from(p.code), p.id, data),
    })
}

/// The HLAK from an MSK (Recv-Key | Send-Key as the backend sent them):
/// its first 32 octets, zero-padded when shorter.
pub fn hlak_from_keys(msk: &[u8]) -> [u8; 32] {
    let mut h = [0u8; 32];
    let n = msk.len().min(32);
    h[..n].copy_from_slice(&msk[..n]);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relays_requests_and_results_only() {
        // Request/MD5-Challenge, id 7, then link padding beyond Length.
        let req = [1, 7, 0, 6, 4, 0xAA, 0xFF, 0xFF];
        let r = relay(&req).unwrap();
        assert_eq!((r.code, r.id), (Code::Request, 7));
        assert_eq!(&r.frame[r.frame.len() - 6..], &req[..6]);
        assert_eq!(relay(&[3, 9, 0, 4]).unwrap().code, Code::Success);
        assert_eq!(relay(&[4, 9, 0, 4]).unwrap().code, Code::Failure);
        // A Response is the peer's to send; truncated packets are refused.
        assert!(relay(&[2, 7, 0, 5, 1]).is_none());
        assert!(relay(&[1, 7, 0, 9, 4]).is_none());
        assert!(relay(&[]).is_none());
    }

    #[test]
    fn hlak_is_the_first_32_octets_of_the_msk() {
        let msk: Vec<u8> = (0..64).collect();
        assert_eq!(hlak_from_keys(&msk)[..], msk[..32]);
        // EAP-MSCHAPv2: 16 + 16 octets, the MS-CHAPv2 server HLAK.
        let mut short = vec![1u8; 16];
        short.extend([2u8; 16]);
        assert_eq!(hlak_from_keys(&short)[..], short[..]);
        assert_eq!(hlak_from_keys(&[5; 8])[8..], [0; 24]);
    }
}
