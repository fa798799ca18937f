//! The process's heap (issue 12 "Soak": RSS back within 5% of its
//! baseline after churn; BENCHMARKS.md "Churn soak").
//!
//! Measured (heaptrack, 2-minute churn of 26,000 SSTP sessions, ~1,000 at
//! once): what stays allocated after the churn is peak-sized tables (the
//! router's address table, admission's per-source table: these now shrink,
//! [`shrink_sparse`]) and the logging registry's span slab (one slot per
//! concurrent session at the peak, ~0.5 KiB each, kept: `sharded_slab`
//! never frees its pages). With glibc's malloc, those few survivors pin the
//! pages around them: 3-6 MB of free memory stayed in the RSS however it
//! was tuned (arenas, trim threshold, `malloc_trim`). jemalloc keeps
//! objects of one size class together and hands back dirty pages itself,
//! so the long-running commands use it: a background thread purges pages
//! unused for a second ([`MALLOC_CONF`]; the `_RJEM_MALLOC_CONF`
//! environment variable overrides it, for measurements).

/// The process's allocator (all commands; see the module docs).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read at its start (`malloc_conf`, with the crate's
/// `_rjem_` prefix): purge freed pages from a background thread after 1 s
/// (dirty) and at once (muzzy: `MADV_FREE` pages still count in the RSS).
#[export_name = "_rjem_malloc_conf"]
pub static MALLOC_CONF: &u8 = &b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0"[0];

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
