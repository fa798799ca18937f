//! The long-running commands' heap (issue 12 "Soak": RSS back after
//! churn). Measured with glibc's `malloc_stats()` around a 2-minute churn
//! of 24,000 sessions (BENCHMARKS.md "Churn soak"): the bytes in use came
//! back to within 0.6-0.9 MB of the baseline, but the anonymous RSS stayed
//! 5-6 MB up, and `malloc_trim(0)` released none of it: free memory in
//! pages that the few objects allocated during the churn and kept (peak
//! sized tables) pin, spread over up to eight per-thread arenas whose
//! tops `malloc_trim` does not shrink, and a trim threshold that glibc
//! raises (up to 64 MB) each time a large block is freed. So the server
//! and the proxy use at most two arenas (two cores' worth of workers;
//! tcache keeps most allocations lock-free) and a fixed 128 KiB trim
//! threshold (measured: +3.3 MB instead of +6 MB, one run each), and hand
//! free pages back after churn ([`release_free_memory`], called by
//! admission control).

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

/// Hands the free pages of every arena back to the system.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
