//! No allocation per packet in steady state: 10,000 packets each way
//! through a connected SSTP session pair, counted by a global allocator
//! that counts this thread's allocations.

mod sim;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use session::Session;
use sim::{v4, with_df, Opts, Pair, CLIENT_V4, SERVER_V4};

struct Counting;

thread_local! {
    static COUNT: Cell<Option<u64>> = const { Cell::new(None) };
}

fn note() {
    // `try_with`: allocations during thread teardown are not ours.
    let _ = COUNT.try_with(|c| {
        if let Some(n) = c.get() {
            c.set(Some(n + 1));
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    COUNT.with(|c| c.set(Some(0)));
    f();
    COUNT.with(|c| c.replace(None)).unwrap_or(0)
}

/// Moves `packets` from `from`'s TUN side to `to`'s, in batches of 8 per
/// stream write, as a driver does; returns how many arrived intact.
fn push(
    from: &mut session::SstpSession,
    to: &mut session::SstpSession,
    now: std::time::Instant,
    pkt: &[u8],
    packets: usize,
    wire: &mut Vec<u8>,
) -> usize {
    let mut arrived = 0;
    for _ in 0..packets / 8 {
        for _ in 0..8 {
            from.handle_tun_packet(now, pkt);
        }
        wire.clear();
        while from.poll_transmit(wire) {}
        to.handle_stream_bytes(now, wire);
        while let Some(p) = to.poll_tun() {
            arrived += usize::from(p == pkt);
        }
    }
    arrived
}

#[test]
fn ten_thousand_packets_each_way_allocate_nothing() {
    // The counter sees allocations at all.
    assert_eq!(allocations(|| drop(std::hint::black_box(vec![1u8; 64]))), 1);
    let mut p = Pair::new(Opts::default());
    p.connect();
    let now = p.now;
    let up = v4(CLIENT_V4, SERVER_V4, 1400, 0x11);
    let down = v4(SERVER_V4, CLIENT_V4, 1400, 0x22);
    let mut wire = Vec::with_capacity(64 * 1024);
    // Warm up: buffers reach their working size.
    push(&mut p.client, &mut p.server, now, &up, 1000, &mut wire);
    push(&mut p.server, &mut p.client, now, &down, 1000, &mut wire);

    let mut arrived = (0, 0);
    let n = allocations(|| {
        arrived.0 = push(&mut p.client, &mut p.server, now, &up, 10_000, &mut wire);
        arrived.1 = push(&mut p.server, &mut p.client, now, &down, 10_000, &mut wire);
    });
    assert_eq!(arrived, (10_000, 10_000), "every packet arrived intact");
    assert_eq!(n, 0, "allocations in steady state");
    assert!(p.server.poll_event().is_none() && p.client.poll_event().is_none());
}

/// Fragmenting (a 3000-byte IPv4 packet without DF for a peer with the
/// default MRU of 1500) allocates nothing once warm either.
#[test]
fn fragmenting_allocates_nothing_in_steady_state() {
    let mut p = Pair::new(Opts {
        server_mru: 4000,
        ..Opts::default()
    });
    p.connect();
    let now = p.now;
    let big = with_df(v4(SERVER_V4, CLIENT_V4, 3000, 0x33), false);
    let mut wire = Vec::with_capacity(64 * 1024);
    let mut fragments = 0;
    let mut run = |p: &mut Pair, packets: usize, fragments: &mut usize| {
        for _ in 0..packets / 8 {
            for _ in 0..8 {
                p.server.handle_tun_packet(now, &big);
            }
            wire.clear();
            while p.server.poll_transmit(&mut wire) {}
            p.client.handle_stream_bytes(now, &wire);
            while let Some(f) = p.client.poll_tun() {
                *fragments += usize::from(f.len() <= 1500 && f[12..20] == big[12..20]);
            }
        }
    };
    run(&mut p, 1000, &mut fragments);
    let n = allocations(|| run(&mut p, 10_000, &mut fragments));
    assert_eq!(fragments, 3 * 11_000, "three fragments of each");
    assert_eq!(n, 0, "allocations in steady state");
}

/// The server's receive path as the driver runs it: TCP segments (an MRU
/// of 4000) from the client through the session, joined for the TUN
/// device. Nothing is allocated once warm, and 16 segments make one packet.
#[test]
fn joining_segments_for_the_device_allocates_nothing_in_steady_state() {
    let mut p = Pair::new(Opts {
        server_mru: 4000,
        client_mru: 4000,
        ..Opts::default()
    });
    p.connect();
    let now = p.now;
    let segs: Vec<Vec<u8>> = (0..16u32)
        .map(|i| {
            let mut s = with_df(v4(CLIENT_V4, SERVER_V4, 4000, 0x44), true);
            s[9] = 6;
            s[24..28].copy_from_slice(&(i * 3960).to_be_bytes());
            s[32] = 5 << 4;
            s[33] = 0x10;
            session::ip::fill_tcp_checksum(&mut s);
            s
        })
        .collect();
    let mut gro = session::gro::Coalescer::default();
    let mut wire = Vec::with_capacity(64 * 1024);
    let mut joined = Vec::new();
    let mut run = |p: &mut Pair, rounds: usize, joined: &mut Vec<u16>| {
        for _ in 0..rounds {
            for s in &segs {
                p.client.handle_tun_packet(now, s);
            }
            wire.clear();
            while p.client.poll_transmit(&mut wire) {}
            p.server.handle_stream_bytes(now, &wire);
            while let Some(s) = p.server.poll_tun() {
                gro.push(s);
            }
            joined.extend(gro.finish().map(|(_, n)| n));
        }
    };
    run(&mut p, 10, &mut joined);
    joined.clear();
    joined.reserve(1000);
    let n = allocations(|| run(&mut p, 625, &mut joined));
    assert_eq!(joined, vec![16; 625], "16 segments joined into one packet");
    assert_eq!(n, 0, "allocations in steady state");
}
