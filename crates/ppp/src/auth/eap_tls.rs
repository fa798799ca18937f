//! EAP-TLS (type 13) framing: RFC 5216 §3 (TLS 1.2) and RFC 9190 (TLS 1.3),
//! sans-IO.
//!
//! This module carries TLS records over EAP and never runs TLS itself: the
//! TLS engine is behind [`TlsSession`] (the binary implements it with rustls,
//! which the protocol crates must not depend on).
//!
//! Type-Data (RFC 5216 §3.1): a Flags octet — L (0x80, a 4-octet TLS Message
//! Length follows), M (0x40, more fragments follow), S (0x20, EAP-TLS Start)
//! — then TLS data. A fragmented message sets L on its first fragment and M
//! on all but the last; each fragment is acknowledged by an empty message
//! (Flags 0, no data) from the other side (§2.1.5).
//!
//! Keys (RFC 5216 §2.3, RFC 9190 §2.3): the MSK is the first 64 octets of
//! the key material; MS-SSTP §3.2.5.2.2 takes its first 32 octets as the
//! HLAK on both sides ([`hlak_from_msk`]). pppd 2.4.9 derives 16-octet MPPE
//! keys from the MSK instead, and sstpc (through sstp-pppd-plugin.so) makes
//! its binding from those: the server also accepts that form
//! ([`hlak_from_msk_pppd`]; tested with the real sstpc + pppd in
//! `sstp_eap_tls_e2e::sstpc_pppd_eap_tls_against_our_server`).

/// Flags: L, a 4-octet TLS Message Length follows.
pub const FLAG_LENGTH: u8 = 0x80;
/// Flags: M, more fragments follow.
pub const FLAG_MORE: u8 = 0x40;
/// Flags: S, EAP-TLS Start (server to peer only).
pub const FLAG_START: u8 = 0x20;

/// Largest TLS message we reassemble (a certificate chain fits easily).
pub const MAX_MESSAGE: usize = 64 * 1024;

/// One TLS session driven over EAP-TLS. Implementations are synchronous
/// buffer-in/buffer-out engines (e.g. rustls' `read_tls`/`write_tls`).
pub trait TlsSession: Send {
    /// Feeds one reassembled TLS message from the other side. The error is
    /// plain words for logs (e.g. "the certificate is from an unknown CA").
    fn input(&mut self, tls: &[u8]) -> Result<(), String>;
    /// TLS bytes to send (may be empty).
    fn take_output(&mut self) -> Vec<u8>;
    /// The handshake is complete; on the server the client certificate was
    /// verified; on the client the server certificate was verified.
    fn is_done(&self) -> bool;
    /// The 64-octet MSK, once the handshake is complete.
    fn msk(&self) -> Option<[u8; 64]>;
    /// Server: the user name taken from the client certificate.
    fn peer_name(&self) -> Option<String>;
    /// Decrypted application data received so far (PEAP's tunneled EAP);
    /// EAP-TLS sessions drop it and return nothing.
    fn take_app(&mut self) -> Vec<u8> {
        Vec::new()
    }
    /// Queues application data to send (PEAP's tunneled EAP); its records
    /// come out of [`TlsSession::take_output`].
    fn write_app(&mut self, _data: &[u8]) -> Result<(), String> {
        Err("this TLS session carries no application data".into())
    }
}

/// Starts a [`TlsSession`] per authentication (server or client side).
pub trait EapTlsConfig: Send + Sync + std::fmt::Debug {
    /// A new session; the error is plain words.
    fn start(&self) -> Result<Box<dyn TlsSession>, String>;
    /// The EAP method the sessions are for: EAP-TLS (13), or PEAP (25,
    /// [`super::peap`]) on the peer.
    fn method(&self) -> super::eap::EapType {
        super::eap::EapType::Tls
    }
}

/// The SSTP HLAK from an EAP MSK (MS-SSTP §3.2.5.2.2: its first 32 octets).
pub fn hlak_from_msk(msk: &[u8; 64]) -> [u8; 32] {
    let mut h = [0u8; 32];
    h.copy_from_slice(&msk[..32]);
    h
}

/// The HLAK sstpc + pppd 2.4.9 use after EAP-TLS: pppd keeps 16 octets of
/// each MPPE key it cuts from the MSK (RFC 2716 §3.5: Recv-Key = MSK[0..32],
/// Send-Key = MSK[32..64], from the server's side) and the HLAK is built
/// from them as for MS-CHAPv2 (MS-SSTP §3.2.5.2.2: server Recv | Send):
/// MSK[0..16] | MSK[32..48]. sorz's sstp-server gets the same from pppd.
pub fn hlak_from_msk_pppd(msk: &[u8; 64]) -> [u8; 32] {
    let mut h = [0u8; 32];
    h[..16].copy_from_slice(&msk[..16]);
    h[16..].copy_from_slice(&msk[32..48]);
    h
}

/// A parsed EAP-TLS Type-Data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment<'a> {
    /// The Flags octet.
    pub flags: u8,
    /// TLS Message Length, when L is set.
    pub total: Option<u32>,
    /// TLS data.
    pub data: &'a [u8],
}

impl Fragment<'_> {
    /// An acknowledgement: no flags, no data.
    pub fn is_ack(&self) -> bool {
        self.flags & (FLAG_MORE | FLAG_START) == 0 && self.data.is_empty()
    }
}

/// Parses EAP-TLS Type-Data; `None` when empty or L is set without 4 octets.
pub fn parse(td: &[u8]) -> Option<Fragment<'_>> {
    let (&flags, rest) = td.split_first()?;
    if flags & FLAG_LENGTH != 0 {
        let (l, data) = rest.split_first_chunk::<4>()?;
        Some(Fragment {
            flags,
            total: Some(u32::from_be_bytes(*l)),
            data,
        })
    } else {
        Some(Fragment {
            flags,
            total: None,
            data: rest,
        })
    }
}

/// The Type-Data of an acknowledgement.
pub fn ack() -> Vec<u8> {
    vec![0]
}

/// The Type-Data of an EAP-TLS Start.
pub fn start() -> Vec<u8> {
    vec![FLAG_START]
}

/// Reassembles one TLS message from fragments (RFC 5216 §2.1.5).
#[derive(Debug, Default)]
pub struct Reassembler {
    buf: Vec<u8>,
    expected: Option<usize>,
}

/// What a fragment did to the reassembly.
#[derive(Debug, PartialEq, Eq)]
pub enum Reassembled {
    /// More fragments follow: acknowledge this one.
    NeedMore,
    /// The whole message.
    Complete(Vec<u8>),
}

impl Reassembler {
    /// Adds a fragment. Errors (plain words) for a message over
    /// [`MAX_MESSAGE`], more data than the announced length, or a
    /// message that ends short of it.
    pub fn push(&mut self, f: &Fragment<'_>) -> Result<Reassembled, &'static str> {
        if self.buf.is_empty() && self.expected.is_none() {
            if let Some(t) = f.total {
                let t = usize::try_from(t).unwrap_or(usize::MAX);
                if t > MAX_MESSAGE {
                    return Err("TLS message length over the limit");
                }
                self.expected = Some(t);
            }
        }
        if self.buf.len() + f.data.len() > self.expected.unwrap_or(MAX_MESSAGE) {
            self.reset();
            return Err("more TLS data than the announced length");
        }
        self.buf.extend_from_slice(f.data);
        if f.flags & FLAG_MORE != 0 {
            return Ok(Reassembled::NeedMore);
        }
        if let Some(e) = self.expected {
            if e != self.buf.len() {
                self.reset();
                return Err("TLS message shorter than the announced length");
            }
        }
        self.expected = None;
        Ok(Reassembled::Complete(std::mem::take(&mut self.buf)))
    }

    fn reset(&mut self) {
        self.buf.clear();
        self.expected = None;
    }

    /// True while a message is partly received.
    pub fn in_progress(&self) -> bool {
        !self.buf.is_empty() || self.expected.is_some()
    }
}

/// Splits one TLS message into Type-Data fragments of at most `max` TLS
/// octets each; L is set (with the total) on the first fragment of a
/// fragmented message, M on all but the last.
#[derive(Debug)]
pub struct Fragmenter {
    data: Vec<u8>,
    pos: usize,
    max: usize,
}

impl Fragmenter {
    /// A fragmenter for `data`; `max` is at least 1.
    pub fn new(data: Vec<u8>, max: usize) -> Self {
        Fragmenter {
            data,
            pos: 0,
            max: max.max(1),
        }
    }

    /// The next fragment's Type-Data, or `None` when all were sent.
    pub fn next_fragment(&mut self) -> Option<Vec<u8>> {
        if self.pos >= self.data.len() && !(self.pos == 0 && self.data.is_empty()) {
            return None;
        }
        let end = (self.pos + self.max).min(self.data.len());
        let more = end < self.data.len();
        let first = self.pos == 0;
        let mut flags = if more { FLAG_MORE } else { 0 };
        let mut td = Vec::with_capacity(5 + end - self.pos);
        if first && more {
            flags |= FLAG_LENGTH;
            td.push(flags);
            td.extend_from_slice(&(self.data.len() as u32).to_be_bytes());
        } else {
            td.push(flags);
        }
        td.extend_from_slice(&self.data[self.pos..end]);
        self.pos = end.max(1);
        Some(td)
    }

    /// True when the last fragment was handed out.
    pub fn finished(&self) -> bool {
        self.pos >= self.data.len()
    }
}

/// What [`Exchange::receive`] asks the caller to do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Send this Type-Data.
    Send(Vec<u8>),
    /// The other side acknowledged our last complete message.
    PeerAck,
    /// TLS failed (plain words); `alert` is Type-Data carrying the TLS alert
    /// for the other side, if the engine produced one.
    Failed {
        reason: String,
        alert: Option<Vec<u8>>,
    },
}

/// One side's EAP-TLS conversation: reassembly, the TLS engine, and
/// fragmentation of its answers. Both the authenticator and the peer use it.
pub(crate) struct Exchange {
    tls: Box<dyn TlsSession>,
    rx: Reassembler,
    tx: Option<Fragmenter>,
    max_frag: usize,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange").finish_non_exhaustive()
    }
}

impl Exchange {
    /// `max_frag`: TLS octets per fragment (keep the EAP packet under the MRU).
    pub(crate) fn new(tls: Box<dyn TlsSession>, max_frag: usize) -> Self {
        Exchange {
            tls,
            rx: Reassembler::default(),
            tx: None,
            max_frag,
        }
    }

    /// The fragment size for a link MRU: EAP header (4) + Type (1) +
    /// Flags (1) + TLS Message Length (4) must fit.
    pub(crate) fn max_frag_for_mru(mru: u16) -> usize {
        usize::from(mru).saturating_sub(10).clamp(64, 1400)
    }

    /// The first flight (client: ClientHello after Start).
    pub(crate) fn first_flight(&mut self) -> Vec<u8> {
        let out = self.tls.take_output();
        self.send_message(out)
    }

    fn send_message(&mut self, out: Vec<u8>) -> Vec<u8> {
        let mut f = Fragmenter::new(out, self.max_frag);
        let td = f.next_fragment().unwrap_or_else(ack);
        self.tx = if f.finished() { None } else { Some(f) };
        td
    }

    pub(crate) fn tls(&self) -> &dyn TlsSession {
        self.tls.as_ref()
    }

    /// Handles the Type-Data of an EAP-TLS message from the other side.
    pub(crate) fn receive(&mut self, td: &[u8]) -> Step {
        self.receive_with(td, |_| Ok(()))
    }

    /// [`Exchange::receive`], with `inner` run on the TLS session after each
    /// complete message was fed to it and before its answer is taken (PEAP
    /// reads the tunneled request there and writes the response). An error
    /// from `inner` fails the exchange.
    pub(crate) fn receive_with(
        &mut self,
        td: &[u8],
        mut inner: impl FnMut(&mut dyn TlsSession) -> Result<(), String>,
    ) -> Step {
        let Some(f) = parse(td) else {
            return Step::Failed {
                reason: "malformed EAP-TLS message".into(),
                alert: None,
            };
        };
        if let Some(tx) = &mut self.tx {
            if !f.is_ack() {
                return Step::Failed {
                    reason: "expected an EAP-TLS fragment acknowledgement".into(),
                    alert: None,
                };
            }
            let td = tx.next_fragment().unwrap_or_else(ack);
            if tx.finished() {
                self.tx = None;
            }
            return Step::Send(td);
        }
        if f.is_ack() && !self.rx.in_progress() {
            return Step::PeerAck;
        }
        match self.rx.push(&f) {
            Err(e) => Step::Failed {
                reason: e.into(),
                alert: None,
            },
            Ok(Reassembled::NeedMore) => Step::Send(ack()),
            Ok(Reassembled::Complete(msg)) => {
                if let Err(reason) = self.tls.input(&msg).and_then(|()| inner(self.tls.as_mut())) {
                    let out = self.tls.take_output();
                    return Step::Failed {
                        reason,
                        alert: (!out.is_empty()).then(|| self.send_message(out)),
                    };
                }
                let out = self.tls.take_output();
                if out.is_empty() {
                    Step::Send(ack())
                } else {
                    Step::Send(self.send_message(out))
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn flags_and_length() {
        let f = parse(&[0xC0, 0, 0, 0x10, 0, 1, 2]).unwrap();
        assert_eq!(f.flags, FLAG_LENGTH | FLAG_MORE);
        assert_eq!(f.total, Some(0x1000));
        assert_eq!(f.data, &[1, 2]);
        assert!(parse(&[0x80, 0, 0]).is_none(), "L without 4 octets");
        assert!(parse(&[]).is_none());
        assert!(parse(&[0]).unwrap().is_ack());
        assert!(!parse(&start()).unwrap().is_ack());
    }

    #[test]
    fn fragment_and_reassemble_round_trip() {
        for len in [0usize, 1, 99, 100, 101, 250, 3000] {
            let msg: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut fr = Fragmenter::new(msg.clone(), 100);
            let mut r = Reassembler::default();
            let mut n = 0;
            let got = loop {
                let td = fr.next_fragment().expect("fragment");
                n += 1;
                let f = parse(&td).unwrap();
                assert!(f.data.len() <= 100);
                if n == 1 && len > 100 {
                    assert_eq!(f.total, Some(len as u32), "L on the first fragment");
                } else {
                    assert_eq!(f.total, None);
                }
                match r.push(&f).unwrap() {
                    Reassembled::NeedMore => assert!(!fr.finished()),
                    Reassembled::Complete(m) => break m,
                }
            };
            assert_eq!(got, msg);
            assert!(fr.finished());
            assert_eq!(fr.next_fragment(), None);
            assert_eq!(n, len.div_ceil(100).max(1));
        }
    }

    #[test]
    fn reassembly_rejects_bad_lengths() {
        let mut r = Reassembler::default();
        let big = [FLAG_LENGTH | FLAG_MORE, 0, 2, 0, 0];
        assert!(r.push(&parse(&big).unwrap()).is_err(), "over the limit");
        let mut r = Reassembler::default();
        let first = [FLAG_LENGTH | FLAG_MORE, 0, 0, 0, 3, 1, 2];
        assert_eq!(r.push(&parse(&first).unwrap()), Ok(Reassembled::NeedMore));
        assert!(r.push(&parse(&[0, 3, 4]).unwrap()).is_err(), "too long");
        assert!(!r.in_progress());
        let mut r = Reassembler::default();
        r.push(&parse(&first).unwrap()).unwrap();
        assert!(r.push(&parse(&[0]).unwrap()).is_err(), "too short");
    }

    /// A fake TLS engine: "handshake" is N messages echoed with a prefix.
    pub(crate) struct Fake {
        pub(crate) out: Vec<u8>,
        pub(crate) rounds: u32,
        pub(crate) fail: bool,
    }

    impl TlsSession for Fake {
        fn input(&mut self, tls: &[u8]) -> Result<(), String> {
            if self.fail {
                self.out = b"ALERT".to_vec();
                return Err("bad certificate".into());
            }
            self.rounds = self.rounds.saturating_sub(1);
            if self.rounds > 0 {
                self.out = vec![tls.first().copied().unwrap_or(0); 300];
            }
            Ok(())
        }
        fn take_output(&mut self) -> Vec<u8> {
            std::mem::take(&mut self.out)
        }
        fn is_done(&self) -> bool {
            self.rounds == 0
        }
        fn msk(&self) -> Option<[u8; 64]> {
            self.is_done().then_some([7; 64])
        }
        fn peer_name(&self) -> Option<String> {
            Some("alice".into())
        }
    }

    #[test]
    fn exchange_acks_fragments_and_reports_failure() {
        let fake = Fake {
            out: vec![1; 250],
            rounds: 2,
            fail: false,
        };
        let mut x = Exchange::new(Box::new(fake), 100);
        let first = x.first_flight();
        assert_eq!(parse(&first).unwrap().flags, FLAG_LENGTH | FLAG_MORE);
        // Two more fragments on ACKs, then the last has no M.
        let Step::Send(b) = x.receive(&ack()) else {
            panic!()
        };
        assert_eq!(parse(&b).unwrap().flags, FLAG_MORE);
        let Step::Send(c) = x.receive(&ack()) else {
            panic!()
        };
        assert_eq!(parse(&c).unwrap().flags, 0);
        // A fragmented message from the other side: ACK, then the answer.
        assert_eq!(
            x.receive(&[FLAG_LENGTH | FLAG_MORE, 0, 0, 0, 2, 9]),
            Step::Send(ack())
        );
        match x.receive(&[0, 9]) {
            Step::Send(td) => assert_eq!(parse(&td).unwrap().total, Some(300)),
            s => panic!("{s:?}"),
        }
        // Non-ACK while we still have fragments to send.
        assert!(matches!(x.receive(&[0, 1]), Step::Failed { .. }));

        let mut x = Exchange::new(
            Box::new(Fake {
                out: vec![],
                rounds: 1,
                fail: true,
            }),
            100,
        );
        match x.receive(&[0, 1, 2]) {
            Step::Failed { reason, alert } => {
                assert_eq!(reason, "bad certificate");
                assert_eq!(parse(&alert.unwrap()).unwrap().data, b"ALERT");
            }
            s => panic!("{s:?}"),
        }
        let mut x = Exchange::new(
            Box::new(Fake {
                out: vec![],
                rounds: 3,
                fail: false,
            }),
            100,
        );
        assert_eq!(x.receive(&ack()), Step::PeerAck);
        assert!(matches!(x.receive(&[0x80]), Step::Failed { .. }));
    }

    #[test]
    fn hlak_is_the_msk_head() {
        let mut msk = [0u8; 64];
        for (i, b) in msk.iter_mut().enumerate() {
            *b = i as u8;
        }
        assert_eq!(hlak_from_msk(&msk)[..], msk[..32]);
        let pppd = hlak_from_msk_pppd(&msk);
        assert_eq!((&pppd[..16], &pppd[16..]), (&msk[..16], &msk[32..48]));
    }
}
