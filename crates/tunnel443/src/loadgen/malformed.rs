//! `--mode malformed` (issue 12 "Attacks: malformed input at rate"): the
//! protocol crates' fuzz corpora, sent as they are or mutated, over real
//! TLS connections at the stage each belongs to:
//!
//! * `head=DIR`: HTTP request heads and IP-HTTPS preambles (MS-IPHTTPS
//!   §3.2.5.1), in place of the SSTP request (MS-SSTP §3.2.4.1);
//! * `sstp=DIR`: SSTP control and data packets (MS-SSTP §2.2) after a
//!   valid HTTP exchange;
//! * `ppp=DIR`: PPP frames in SSTP data packets, after the HTTP exchange
//!   and a valid Call Connect Request (the server's PPP is running).
//!
//! Each connection takes the next input in turn (round-robin over every
//! file of every corpus), sends up to [`FRAMES`] of them (one head), then
//! waits for the server to close; a connection the server closes is the
//! expected end (a failure at `hold`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{bail, Context};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use super::conn::{connect_tls, hold_reading, within, Fail, Plan};
use super::report::Stage;

/// Inputs sent on one connection past the HTTP exchange.
pub const FRAMES: usize = 8;

/// Where an input goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Head,
    Sstp,
    Ppp,
}

/// Every input of the `--corpus` directories.
#[derive(Default)]
pub struct Corpus {
    inputs: Vec<(Kind, Vec<u8>)>,
    next: AtomicUsize,
    /// Inputs written so far.
    pub sent: AtomicU64,
}

impl Corpus {
    /// `KIND=DIR` arguments (`head`, `sstp`, `ppp`).
    pub fn load(args: &[String]) -> anyhow::Result<Self> {
        let mut inputs = Vec::new();
        for a in args {
            let Some((kind, dir)) = a.split_once('=') else {
                bail!("--corpus {a}: expected KIND=DIR (head, sstp or ppp)");
            };
            let kind = match kind {
                "head" => Kind::Head,
                "sstp" => Kind::Sstp,
                "ppp" => Kind::Ppp,
                k => bail!("--corpus {a}: unknown kind {k} (head, sstp or ppp)"),
            };
            let dir = PathBuf::from(dir);
            let mut files: Vec<_> = std::fs::read_dir(&dir)
                .with_context(|| format!("--corpus {a}"))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            for f in files {
                let bytes =
                    std::fs::read(&f).with_context(|| format!("--corpus {}", f.display()))?;
                if !bytes.is_empty() {
                    inputs.push((kind, bytes));
                }
            }
        }
        if inputs.is_empty() {
            bail!("--corpus: no input files (give KIND=DIR, e.g. sstp=crates/sstp/fuzz/corpus/message_roundtrip)");
        }
        Ok(Corpus {
            inputs,
            ..Default::default()
        })
    }

    /// The next input (round-robin), mutated half of the time.
    fn take(&self) -> (Kind, Vec<u8>) {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let (kind, bytes) = &self.inputs[i % self.inputs.len()];
        let mut b = bytes.clone();
        if i / self.inputs.len() % 2 == 1 {
            mutate(&mut b);
        }
        (*kind, b)
    }
}

/// Flips one to four random bytes, and cuts the tail a quarter of the time.
fn mutate(b: &mut Vec<u8>) {
    for _ in 0..rand::random_range(1..=4) {
        let at = rand::random_range(0..b.len());
        b[at] ^= rand::random_range(1..=255u8);
    }
    if rand::random_range(0..4) == 0 {
        b.truncate(rand::random_range(1..=b.len()));
    }
}

/// One connection: its input at its stage, then a wait for the close.
pub async fn run(
    plan: &Plan,
    corpus: &Corpus,
    source: Option<IpAddr>,
    started: Instant,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), Fail> {
    let (kind, first) = corpus.take();
    let mut s = connect_tls(plan, source).await?;
    let mut out = Vec::new();
    if kind == Kind::Head {
        out = first;
        if !out.windows(4).any(|w| w == b"\r\n\r\n") {
            out.extend_from_slice(b"\r\n\r\n");
        }
        corpus.sent.fetch_add(1, Ordering::Relaxed);
    } else {
        within(plan, Stage::Http, async {
            crate::client::sstp::sstp_preamble(&mut s, &plan.host)
                .await
                .map_err(|f| f.to_string())
        })
        .await?;
        if kind == Kind::Ppp {
            sstp::wire::emit_control(
                sstp::wire::MessageType::CallConnectRequest,
                &[sstp::wire::Attribute::EncapsulatedProtocolId(1)],
                &mut out,
            );
        }
        let mut input = Some(first);
        for _ in 0..FRAMES {
            let b = input.take().unwrap_or_else(|| corpus.take().1);
            match kind {
                Kind::Ppp => {
                    let _ = sstp::wire::emit_data(&b, &mut out);
                }
                _ => out.extend_from_slice(&b),
            }
            corpus.sent.fetch_add(1, Ordering::Relaxed);
        }
    }
    plan.stats.setup(started.elapsed());
    if s.write_all(&out).await.is_err() || s.flush().await.is_err() {
        plan.stats.down();
        return Err((Stage::Hold, "the server closed the connection".into()));
    }
    hold_reading(plan, &mut s, stop).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpus_arguments_name_the_field() {
        let e = |a: &str| format!("{:#}", Corpus::load(&[a.to_string()]).err().unwrap());
        assert!(e("nodir").starts_with("--corpus nodir: expected KIND=DIR"));
        assert!(e("tls=/tmp").contains("unknown kind tls"));
        assert!(e("sstp=/no/such/dir").starts_with("--corpus sstp=/no/such/dir"));
    }

    #[test]
    fn inputs_go_round_robin_and_every_other_round_mutated() {
        let dir = std::env::temp_dir().join(format!("t443-corpus-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a"), [1u8; 64]).unwrap();
        std::fs::write(dir.join("b"), [2u8; 64]).unwrap();
        let c = Corpus::load(&[format!("ppp={}", dir.display())]).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let (k, a) = c.take();
        assert_eq!((k, a), (Kind::Ppp, vec![1u8; 64]));
        assert_eq!(c.take().1, vec![2u8; 64]);
        assert_ne!(c.take().1, vec![1u8; 64], "the second round is mutated");
    }
}
