//! The long-running commands' heap (issue 12 "Soak": RSS back after
//! churn; BENCHMARKS.md "Churn soak").
//!
//! After a churn, the heap pages that still hold a live allocation stay in
//! the RSS, whatever is free around it. So what lives longer than a session
//! is allocated before the sessions or not at all: the logging registry's
//! session span slots are set up by the server's workers at startup
//! ([`server_runtime`], [`reserve_span_slots`]); TLS resumption uses
//! tickets rather than a server-side session cache (`tls::server_config`);
//! the router's address table and admission's per-source table shrink
//! after a peak ([`shrink_sparse`]). The fixed TUN read buffers (4 MB) are
//! allocated at startup. The server and the proxy use at most two malloc
//! arenas and a fixed 128 KiB trim threshold (glibc otherwise raises it,
//! up to 64 MB, each time a large block is freed), and hand free pages
//! back after churn ([`release_free_memory`], called by admission
//! control). They also run without glibc's per-thread cache of freed
//! chunks ([`without_thread_cache`]), whose chunks `malloc_trim` cannot
//! hand back and which kept 1.4-1.6 MB of the churn's pages in the RSS.
//! jemalloc (purging by size class) was measured before these
//! changes and not kept: the RSS after churn ended 3-5 MB up instead of
//! 3-6, but idle sessions cost 52 KiB each at 10,000 instead of 48 (the
//! target is 48). mimalloc kept far more.

/// Sets the allocator up for a long-running server; before the runtime's
/// threads exist (arenas are created by the first allocations of each).
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters.
    unsafe {
        // glibc's own setting wins (MALLOC_ARENA_MAX, for measurements).
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
    }
}

/// The glibc tunable that sets how many freed chunks per size class each
/// thread keeps for itself (glibc's default: 7).
const TCACHE_TUNABLE: &str = "glibc.malloc.tcache_count";

/// Runs the long-running commands with glibc's thread cache ("tcache")
/// off. The cache holds up to 7 freed chunks per size class for each
/// thread, outside the arenas, so `malloc_trim` cannot release the pages
/// under them: after a churn those chunks, scattered over the churn's
/// heap, kept 1.4-1.6 MB of it in the RSS (+7-8% on the soak's baseline;
/// with the cache off +0.6%, BENCHMARKS.md "Churn soak"). glibc reads the
/// setting only from `GLIBC_TUNABLES` at process start (there is no
/// `mallopt` for it), so the process executes itself again once with the
/// tunable added, the same PID, arguments and environment otherwise. An
/// operator's own `glibc.malloc.tcache_count` in `GLIBC_TUNABLES` wins
/// (`=7` restores glibc's default). Returns only if the cache is already
/// set, or with the reason the re-execution failed (the process then runs
/// on with the cache).
pub fn without_thread_cache() -> Option<std::io::Error> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        let current = std::env::var_os("GLIBC_TUNABLES").unwrap_or_default();
        if current.to_string_lossy().contains(TCACHE_TUNABLE) {
            return None;
        }
        let mut tunables = current;
        if !tunables.is_empty() {
            tunables.push(":");
        }
        tunables.push(format!("{TCACHE_TUNABLE}=0"));
        let mut args = std::env::args_os();
        let mut command = std::process::Command::new("/proc/self/exe");
        if let Some(arg0) = args.next() {
            command.arg0(arg0);
        }
        Some(command.args(args).env("GLIBC_TUNABLES", tunables).exec())
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    None
}

/// Hands the free pages of every arena back to the system.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Session span slots each worker thread of the server sets up at startup
/// (about 0.3 KiB each): room for this many concurrent sessions per
/// worker before the slab grows during a churn.
pub const SPAN_SLOTS: usize = 1024;

/// The server's runtime: tokio's default multi-thread runtime whose
/// worker threads each reserve [`SPAN_SLOTS`] session span slots before
/// they run anything.
pub fn server_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let started = std::sync::atomic::AtomicUsize::new(0);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .on_thread_start(move || {
            // The workers start first; blocking-pool threads started later
            // (during a churn) must not allocate their own reservation.
            if started.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < workers {
                reserve_span_slots(SPAN_SLOTS);
            }
        })
        .build()
}

/// Sets up `n` slots of the logging registry's span slab on the calling
/// thread. Each slot keeps the map of its span's extensions (the formatted
/// fields) for good once a span has used it (`tracing-subscriber` clears
/// it, never frees it): a slot first used during a churn left that small
/// map among the sessions' memory, where it kept a heap page from being
/// handed back (measured: 1.2 MB of the RSS growth after a 2-minute soak).
/// Set up here, before any session, the maps sit together; sessions reuse
/// the slots. Nothing is set up when the session span's level is filtered
/// out (sessions then create no span either).
pub fn reserve_span_slots(n: usize) {
    let peer = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
    let spans: Vec<tracing::Span> = (0..n)
        .map(|_| crate::server::session_span(peer, 0, ""))
        .collect();
    drop(spans);
}

/// Capacity a table keeps however empty it gets (a few hundred bytes):
/// below it, shrinking would only make the next sessions grow it again.
const KEEP_CAPACITY: usize = 64;

/// Gives back most of a hash map's spare capacity once its entries have
/// fallen below a quarter of it (a table sized for the peak number of
/// sessions otherwise keeps that size for good: measured, the router's
/// address table held 135 KB after a churn of 1,000 concurrent sessions).
/// It keeps room for twice the entries left, so a table that shrinks has
/// to lose half of them again before the next shrink (amortised O(1)).
pub fn shrink_sparse<K, V, S>(map: &mut std::collections::HashMap<K, V, S>)
where
    K: Eq + std::hash::Hash,
    S: std::hash::BuildHasher,
{
    if map.capacity() > KEEP_CAPACITY && map.len() < map.capacity() / 4 {
        map.shrink_to((map.len() * 2).max(KEEP_CAPACITY));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn filled(n: u32) -> HashMap<u32, u64> {
        (0..n).map(|i| (i, u64::from(i))).collect()
    }

    #[test]
    fn a_table_emptied_below_a_quarter_gives_its_capacity_back() {
        let mut m = filled(1000);
        let peak = m.capacity();
        m.retain(|&k, _| k < 100);
        shrink_sparse(&mut m);
        assert!(m.capacity() < peak / 4, "{} of {peak}", m.capacity());
        assert!(m.capacity() >= 200, "room for twice the entries left");
        assert_eq!(m.len(), 100);
        assert_eq!(m.get(&99), Some(&99));
    }

    #[test]
    fn a_table_still_a_quarter_full_keeps_its_capacity() {
        let mut m = filled(1000);
        let peak = m.capacity();
        assert_eq!(peak, 1792, "2,048 buckets");
        // Just over a quarter: a shrink would halve the buckets.
        m.retain(|&k, _| k < 460);
        shrink_sparse(&mut m);
        assert!(m.capacity() > peak / 2, "{} of {peak}", m.capacity());
    }

    /// Counts the calling thread's allocations (this module's tests).
    mod counting {
        use std::alloc::{GlobalAlloc, Layout, System};
        use std::cell::Cell;

        pub struct Counting;

        thread_local! {
            pub static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
        }

        // SAFETY: forwards to the system allocator; the counter is a
        // const-initialised thread-local without a destructor.
        unsafe impl GlobalAlloc for Counting {
            unsafe fn alloc(&self, l: Layout) -> *mut u8 {
                let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
                unsafe { System.alloc(l) }
            }
            unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
                unsafe { System.dealloc(p, l) }
            }
        }
    }

    #[global_allocator]
    static COUNTING: counting::Counting = counting::Counting;

    /// Allocations made while `n` session spans are created and held, on a
    /// fresh thread with the server's subscriber, after `reserve` slots.
    fn allocations_for_sessions(reserve: usize, n: usize) -> usize {
        std::thread::spawn(move || {
            let subscriber = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
                .with_writer(std::io::sink)
                .finish();
            tracing::subscriber::with_default(subscriber, || {
                reserve_span_slots(reserve);
                let peer = std::net::SocketAddr::from(([192, 0, 2, 1], 40000));
                let before = counting::ALLOCATIONS.with(|c| c.get());
                let spans: Vec<_> = (0..n)
                    .map(|i| crate::server::session_span(peer, i as u64, "{corr}"))
                    .collect();
                let after = counting::ALLOCATIONS.with(|c| c.get());
                drop(spans);
                after - before
            })
        })
        .join()
        .unwrap()
    }

    #[test]
    fn sessions_reuse_the_span_slots_reserved_at_startup() {
        let n = 200;
        let cold = allocations_for_sessions(0, n);
        let warm = allocations_for_sessions(SPAN_SLOTS, n);
        // Without the reservation each session's slot also allocates its
        // extensions map (and the slab its pages): at least one more
        // allocation per session than the span's own formatted fields.
        assert!(
            warm + n <= cold,
            "{warm} allocations with the reservation, {cold} without"
        );
    }

    #[test]
    fn a_small_table_is_left_alone() {
        let mut m = filled(KEEP_CAPACITY as u32 / 2);
        let cap = m.capacity();
        m.clear();
        shrink_sparse(&mut m);
        assert_eq!(m.capacity(), cap);
        let mut big = filled(1000);
        big.clear();
        shrink_sparse(&mut big);
        assert!(big.capacity() >= KEEP_CAPACITY);
        assert!(big.capacity() < 2 * KEEP_CAPACITY);
    }
}
