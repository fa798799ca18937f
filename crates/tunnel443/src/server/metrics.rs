//! The Prometheus endpoint (`[metrics] listen`, off by default):
//! `GET /metrics` answers the OpenMetrics text format, encoded by
//! `prometheus-client` from the same [`Snapshot`] `ctl stats` prints, so
//! the two agree. Labels are low-cardinality only (protocol, method,
//! result, stage, pool, reason, direction, action): never a user or an address.
//! The `radius_*` families are there only with `[radius]`.
//!
//! Anything other than `GET /metrics` gets 404; a request head must fit
//! in [`MAX_HEAD`] bytes and arrive within [`HEAD_TIMEOUT`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

use super::stats::{AdmissionCounts, Labeled, Snapshot};
use super::Shared;
use crate::io_util::{read_head, HeadError};

/// Largest request head read.
pub const MAX_HEAD: usize = 4096;
/// How long a scraper may take to send its request.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// The OpenMetrics content type (what `prometheus-client` encodes).
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The metric families of one snapshot.
#[derive(Debug)]
struct Families(Snapshot);

fn labeled_counters(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: &[Labeled<u64>],
) -> std::fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for v in values {
        m.encode_family(&[(label, v.name)])?
            .encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(&v.value, None)?;
    }
    Ok(())
}

fn labeled_gauges(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: &[(&str, u64)],
) -> std::fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (l, v) in values {
        m.encode_family(&[(label, *l)])?.encode_gauge(v)?;
    }
    Ok(())
}

/// One unlabeled counter or gauge.
fn single(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    v: u64,
) -> std::fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, kind)?;
    match kind {
        MetricType::Gauge => m.encode_gauge(&v),
        _ => m.encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(&v, None),
    }
}

/// Admission control and password throttling.
fn admission(e: &mut DescriptorEncoder, a: &AdmissionCounts) -> std::fmt::Result {
    use MetricType::{Counter, Gauge};
    single(e, "connections", "Connections open", Gauge, a.connections)?;
    single(
        e,
        "handshakes_in_progress",
        "Connections not yet authenticated",
        Gauge,
        a.handshakes,
    )?;
    labeled_counters(
        e,
        "connections_refused",
        "Connections refused at accept, by cap",
        "reason",
        &a.refused,
    )?;
    single(
        e,
        "connections_evicted",
        "Unauthenticated connections closed to make room",
        Counter,
        a.evicted,
    )?;
    single(
        e,
        "handshake_budget_expired",
        "Unauthenticated connections closed at the handshake budget",
        Counter,
        a.budget_expired,
    )?;
    single(
        e,
        "logins_failed",
        "Failed logins",
        Counter,
        a.logins_failed,
    )?;
    labeled_counters(
        e,
        "logins_throttled",
        "Logins delayed or refused by password-guess throttling",
        "action",
        &[
            Labeled {
                name: "delayed",
                value: a.logins_delayed,
            },
            Labeled {
                name: "refused",
                value: a.logins_refused,
            },
        ],
    )
}

impl Collector for Families {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let s = &self.0;
        let sessions: Vec<_> = s.sessions.iter().map(|l| (l.name, l.value)).collect();
        labeled_gauges(&mut e, "sessions", "Live sessions", "protocol", &sessions)?;
        single(
            &mut e,
            "tasks",
            "Tasks the server spawned that are still running",
            MetricType::Gauge,
            s.tasks,
        )?;
        single(
            &mut e,
            "runtime_tasks",
            "Live tasks of the server's tokio runtime (libraries' included)",
            MetricType::Gauge,
            s.runtime_tasks,
        )?;
        labeled_counters(
            &mut e,
            "session_setups",
            "Sessions that came up",
            "protocol",
            &s.setups,
        )?;
        labeled_counters(
            &mut e,
            "session_setup_failures",
            "Session setups that failed, by stage",
            "stage",
            &s.setup_failures,
        )?;
        {
            let mut m = e.encode_descriptor(
                "auth",
                "Authentication results by method",
                None,
                MetricType::Counter,
            )?;
            for a in &s.auth {
                for (result, v) in [("success", a.success), ("failure", a.failure)] {
                    m.encode_family(&[("method", a.method), ("result", result)])?
                        .encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(
                            &v, None,
                        )?;
                }
            }
        }
        let t = &s.traffic;
        labeled_counters(
            &mut e,
            "bytes",
            "IP bytes carried (rx: from clients, tx: to clients)",
            "direction",
            &[
                Labeled {
                    name: "rx",
                    value: t.rx_bytes,
                },
                Labeled {
                    name: "tx",
                    value: t.tx_bytes,
                },
            ],
        )?;
        labeled_counters(
            &mut e,
            "packets",
            "IP packets carried (rx: from clients, tx: to clients)",
            "direction",
            &[
                Labeled {
                    name: "rx",
                    value: t.rx_packets,
                },
                Labeled {
                    name: "tx",
                    value: t.tx_packets,
                },
            ],
        )?;
        let size: Vec<_> = s.pools.iter().map(|p| (p.pool, p.size)).collect();
        let used: Vec<_> = s.pools.iter().map(|p| (p.pool, p.used)).collect();
        labeled_gauges(
            &mut e,
            "pool_size",
            "Addresses (ipv4) or /64s (iphttps) a pool hands out",
            "pool",
            &size,
        )?;
        labeled_gauges(&mut e, "pool_used", "Of them in use", "pool", &used)?;
        labeled_counters(
            &mut e,
            "drops",
            "Packets dropped, by reason",
            "reason",
            &s.drops,
        )?;
        admission(&mut e, &s.admission)?;
        if let Some(r) = &s.radius {
            for (name, help, v) in [
                (
                    "radius_requests",
                    "RADIUS requests sent (not counting retransmissions)",
                    r.requests,
                ),
                (
                    "radius_retransmits",
                    "RADIUS requests sent again",
                    r.retransmits,
                ),
                ("radius_replies", "Verified RADIUS replies", r.replies),
                (
                    "radius_timeouts",
                    "RADIUS requests no server answered in time",
                    r.timeouts,
                ),
            ] {
                e.encode_descriptor(name, help, None, MetricType::Counter)?
                    .encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(&v, None)?;
            }
            labeled_counters(
                &mut e,
                "radius_replies_dropped",
                "RADIUS replies dropped, by reason",
                "reason",
                &r.dropped,
            )?;
        }
        let h = &s.handshake_seconds;
        e.encode_descriptor(
            "handshake_seconds",
            "From TCP accept to the session carrying traffic",
            None,
            MetricType::Histogram,
        )?
        .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            h.sum, h.count, &h.buckets, None,
        )?;
        let build = Info::new([("version", env!("CARGO_PKG_VERSION"))]);
        build.encode(e.encode_descriptor(
            "build",
            "The server's version",
            None,
            build.metric_type(),
        )?)?;
        Ok(())
    }
}

/// The text of `/metrics` for this snapshot.
pub fn render(s: Snapshot) -> String {
    let mut reg = Registry::with_prefix("tunnel443");
    reg.register_collector(Box::new(Families(s)));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &reg).expect("writing to a String");
    out
}

/// Binds `addr` and serves `/metrics` until the task is aborted.
pub async fn start(
    addr: SocketAddr,
    shared: Arc<Shared>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use anyhow::Context;
    let l = TcpListener::bind(addr)
        .await
        .with_context(|| format!("metrics.listen: binding {addr}"))?;
    info!(listen = %addr, "metrics at http://{addr}/metrics");
    Ok(crate::tasks::spawn(async move {
        loop {
            match l.accept().await {
                Ok((s, peer)) => {
                    crate::tasks::spawn(serve(s, peer, shared.clone()));
                }
                Err(e) => {
                    warn!(error = %e, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }))
}

/// A request's method and path.
type Line = (String, String);

/// The method and path of a request head, and the head's length.
fn parse(buf: &[u8]) -> Result<Option<(Line, usize)>, httparse::Error> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    Ok(match req.parse(buf)? {
        httparse::Status::Complete(n) => Some((
            (
                req.method.unwrap_or_default().to_string(),
                req.path.unwrap_or_default().to_string(),
            ),
            n,
        )),
        httparse::Status::Partial => None,
    })
}

async fn serve(mut s: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let mut buf = Vec::new();
    let head = read_head(&mut s, &mut buf, MAX_HEAD, HEAD_TIMEOUT, parse).await;
    let (status, ctype, body) = match head {
        Ok((m, p)) if m == "GET" && (p == "/metrics" || p.starts_with("/metrics?")) => {
            ("200 OK", CONTENT_TYPE, render(shared.stats_snapshot()))
        }
        Ok((m, p)) => {
            debug!(%peer, method = %m, path = %p, "metrics: not GET /metrics; 404");
            ("404 Not Found", "text/plain", "GET /metrics\n".to_string())
        }
        Err(HeadError::TooBig(_)) | Err(HeadError::Parse(_)) => {
            ("400 Bad Request", "text/plain", "bad request\n".to_string())
        }
        Err(_) => return,
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(resp.as_bytes()).await;
    let _ = s.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::registry::{Protocol, TrafficSnapshot};
    use crate::server::stats::{Live, Method, PoolUse, Stage, Stats};

    #[test]
    fn families_in_the_text_format() {
        let st = Stats::default();
        st.auth(Method::Pap, false);
        st.failure(Stage::PppAuth);
        st.setup(Protocol::Sstp, 0.03);
        let snap = st.snapshot(Live {
            sessions: [1, 0],
            pools: vec![PoolUse {
                pool: "ipv4",
                size: 253,
                used: 1,
            }],
            traffic: TrafficSnapshot {
                rx_bytes: 10,
                ..Default::default()
            },
            queue_full: 0,
            no_route: 0,
            client_to_client: 0,
            admission: crate::server::admission::Snapshot {
                connections: 3,
                refused_total_cap: 2,
                logins_refused: 4,
                ..Default::default()
            },
            radius: Some(radius::Counters {
                requests: 3,
                no_response: 1,
                bad_authenticator: 2,
                ..Default::default()
            }),
            tasks: 9,
            runtime_tasks: 11,
        });
        let text = render(snap);
        for line in [
            "tunnel443_sessions{protocol=\"sstp\"} 1",
            "tunnel443_session_setups_total{protocol=\"sstp\"} 1",
            "tunnel443_session_setup_failures_total{stage=\"ppp-auth\"} 1",
            "tunnel443_auth_total{method=\"pap\",result=\"failure\"} 1",
            "tunnel443_bytes_total{direction=\"rx\"} 10",
            "tunnel443_pool_size{pool=\"ipv4\"} 253",
            "tunnel443_drops_total{reason=\"spoofed\"} 0",
            "tunnel443_connections 3",
            "tunnel443_tasks 9",
            "tunnel443_runtime_tasks 11",
            "tunnel443_connections_refused_total{reason=\"total_cap\"} 2",
            "tunnel443_connections_evicted_total 0",
            "tunnel443_logins_throttled_total{action=\"refused\"} 4",
            "tunnel443_handshake_seconds_bucket{le=\"0.04\"} 1",
            "tunnel443_handshake_seconds_count 1",
            "tunnel443_build_info{version=\"",
            "tunnel443_radius_requests_total 3",
            "tunnel443_radius_timeouts_total 1",
            "tunnel443_radius_replies_dropped_total{reason=\"bad_authenticator\"} 2",
            "tunnel443_radius_replies_dropped_total{reason=\"unknown_id\"} 0",
            "# EOF",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }
}
