//! The per-packet work of a session, without IO: a 1400-byte IP packet
//! framed by one end (PPP + SSTP, or IP-HTTPS), decoded by the other
//! (delineation, PPP, anti-spoofing / the router's checks) and queued for
//! the TUN device, in batches of 16 packets per stream write, as the
//! driver does. Throughput is in packets; `cargo bench -p session`.
//! `gro`: 16 TCP segments of one flow (an SSTP MRU of 4000) joined into
//! one packet for the TUN device, checksums checked; throughput in bytes.

use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use session::sstp::{Event, SstpSession};
use session::{IphttpsClient, IphttpsServer, Session};

const BATCH: usize = 16;

fn v4(src: [u8; 4], dst: [u8; 4], len: usize) -> Vec<u8> {
    let mut p = vec![0x5a; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[9] = 17;
    p[12..16].copy_from_slice(&src);
    p[16..20].copy_from_slice(&dst);
    p
}

fn v6(src: std::net::Ipv6Addr, dst: std::net::Ipv6Addr, len: usize) -> Vec<u8> {
    let mut p = vec![0x5a; len];
    p[..8].copy_from_slice(&[0x60, 0, 0, 0, 0, 0, 59, 64]);
    p[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
    p[8..24].copy_from_slice(&src.octets());
    p[24..40].copy_from_slice(&dst.octets());
    p
}

/// A connected SSTP pair (MS-CHAPv2, IPv4 10.44.0.2 for the client).
fn sstp_pair() -> (SstpSession, SstpSession) {
    let now = Instant::now();
    let mut scfg = ppp::Config::server();
    scfg.ipv6 = false;
    let mut ccfg = ppp::Config::client(ppp::Credentials {
        username: "alice".into(),
        secret: ppp::Secret::Password(ppp::Password::new("pw")),
    });
    ccfg.ipv6 = false;
    let users = ppp::Users::parse("alice:plain:pw\n").unwrap();
    let mut server = SstpSession::server(
        sstp::ServerConfig::new([1; 20], [2; 32]),
        scfg,
        None,
        now,
        [3; 32],
        Box::new(ppp::SplitMix64::new(1)),
    );
    let mut client = SstpSession::client(
        sstp::ClientConfig::new([1; 20], [2; 32]),
        ccfg,
        now,
        Box::new(ppp::SplitMix64::new(2)),
    );
    let mut buf = Vec::new();
    for _ in 0..100 {
        buf.clear();
        if client.poll_transmit(&mut buf) {
            server.handle_stream_bytes(now, &buf);
        }
        buf.clear();
        if server.poll_transmit(&mut buf) {
            client.handle_stream_bytes(now, &buf);
        }
        while let Some(ev) = server.poll_event() {
            match ev {
                Event::AuthRequest(r) => {
                    let v = users.verify(&r.username, &r.proof);
                    server.auth_verdict(now, r.id, v)
                }
                Event::NeedIpv4Address { .. } => server.assign_ipv4(
                    now,
                    ppp::Ipv4Assignment {
                        local: [10, 44, 0, 1].into(),
                        peer: [10, 44, 0, 2].into(),
                        dns1: None,
                        dns2: None,
                    },
                ),
                _ => {}
            }
        }
        while client.poll_event().is_some() {}
    }
    (server, client)
}

/// Moves BATCH packets from `from`'s TUN side to `to`'s.
fn one_batch<A: Session, B: Session>(from: &mut A, to: &mut B, pkt: &[u8], wire: &mut Vec<u8>) {
    let now = Instant::now();
    for _ in 0..BATCH {
        from.handle_tun_packet(now, pkt);
    }
    wire.clear();
    while from.poll_transmit(wire) {}
    to.handle_stream_bytes(now, wire);
    let mut n = 0;
    while to.poll_tun().is_some() {
        n += 1;
    }
    assert_eq!(n, BATCH);
}

fn sstp(c: &mut Criterion) {
    let (mut server, mut client) = sstp_pair();
    let up = v4([10, 44, 0, 2], [10, 44, 0, 1], 1400);
    let down = v4([10, 44, 0, 1], [10, 44, 0, 2], 1400);
    let mut wire = Vec::with_capacity(64 * 1024);
    let mut g = c.benchmark_group("sstp_session");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("client_to_server_1400", |b| {
        b.iter(|| one_batch(&mut client, &mut server, &up, &mut wire))
    });
    g.bench_function("server_to_client_1400", |b| {
        b.iter(|| one_batch(&mut server, &mut client, &down, &mut wire))
    });
    g.finish();
}

fn iphttps(c: &mut Criterion) {
    let now = Instant::now();
    let prefix = iphttps::Prefix64::of("fd00:1:0:5::".parse().unwrap());
    let router = iphttps::ClientRouter::new(prefix, iphttps::RouterConfig::default()).unwrap();
    let mut server = IphttpsServer::new(router, now);
    let mut client = IphttpsClient::new("fe80::7".parse().unwrap(), iphttps::MIN_MTU);
    let me: std::net::Ipv6Addr = "fd00:1:0:5::9".parse().unwrap();
    let far: std::net::Ipv6Addr = "2001:db8::1".parse().unwrap();
    let mut wire = Vec::with_capacity(64 * 1024);
    // The link-up RA.
    server.poll_transmit(&mut wire);
    client.handle_stream_bytes(now, &wire);
    while client.poll_event().is_some() {}
    let up = v6(me, far, 1280);
    let down = v6(far, me, 1280);
    let mut g = c.benchmark_group("iphttps_session");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("client_to_server_1280", |b| {
        b.iter(|| one_batch(&mut client, &mut server, &up, &mut wire))
    });
    g.bench_function("server_to_client_1280", |b| {
        b.iter(|| one_batch(&mut server, &mut client, &down, &mut wire))
    });
    g.finish();
}

/// An IPv4 TCP segment (ACK, 20-byte headers) with valid checksums.
fn tcp_segment(seq: u32, id: u16, payload: usize) -> Vec<u8> {
    let mut p = v4([10, 44, 0, 2], [10, 44, 0, 1], 40 + payload);
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[6..8].copy_from_slice(&[0x40, 0]);
    p[9] = 6;
    p[24..28].copy_from_slice(&seq.to_be_bytes());
    p[32] = 5 << 4;
    p[33] = 0x10;
    session::ip::fill_tcp_checksum(&mut p);
    p
}

fn gro(c: &mut Criterion) {
    let segs: Vec<Vec<u8>> = (0..BATCH as u16)
        .map(|i| tcp_segment(3960 * u32::from(i), i, 3960))
        .collect();
    let mut coalescer = session::gro::Coalescer::default();
    let mut g = c.benchmark_group("gro");
    g.throughput(Throughput::Bytes((BATCH * 4000) as u64));
    g.bench_function("join_16_segments_of_4000", |b| {
        b.iter(|| {
            for s in &segs {
                coalescer.push(s);
            }
            assert_eq!(coalescer.finish().count(), 1);
        })
    });
    g.finish();
}

criterion_group!(benches, sstp, iphttps, gro);
criterion_main!(benches);
