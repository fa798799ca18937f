//! Buffers lent for one turn and given back, shared by all sessions: the
//! memory a busy session needs is held once per turn in progress, not once
//! per session, and nothing is allocated per turn once warm.

use std::sync::Mutex;

/// A bounded free list of `T`.
pub struct Spares<T> {
    free: Mutex<Vec<T>>,
    max: usize,
}

impl<T: Default> Spares<T> {
    /// Keeps at most `max` given back.
    pub const fn new(max: usize) -> Self {
        Spares {
            free: Mutex::new(Vec::new()),
            max,
        }
    }

    /// One given back earlier, or a new one.
    pub fn take(&self) -> T {
        self.free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default()
    }

    /// Keeps `t` for a later [`take`](Self::take), unless `max` are kept.
    pub fn give(&self, t: T) {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if free.len() < self.max {
            free.push(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_what_was_given_up_to_max() {
        let s: Spares<Vec<u8>> = Spares::new(2);
        let mut a = s.take();
        a.reserve(100);
        let ptr = a.as_ptr();
        s.give(a);
        let back = s.take();
        assert_eq!(back.as_ptr(), ptr, "the same buffer back");
        for _ in 0..3 {
            s.give(Vec::with_capacity(1));
        }
        assert_eq!(s.free.lock().unwrap().len(), 2);
    }
}
