//! Randomness is supplied by the caller: the engine never reads OS entropy,
//! so tests and fuzzing are deterministic.
//!
//! Challenges (CHAP, MS-CHAPv2 authenticator and peer challenges) are drawn
//! from [`Rng`] directly and must be unpredictable: the driver passes a
//! cryptographic generator (e.g. one backed by `getrandom`). Magic numbers,
//! packet identifiers and suggested IPv6 interface identifiers only need to
//! differ, so each negotiator derives them from a [`SplitMix64`] seeded once
//! from the caller's [`Rng`].

/// A source of random bytes.
pub trait Rng: Send {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]);
}

impl<F: FnMut(&mut [u8]) + Send> Rng for F {
    fn fill(&mut self, buf: &mut [u8]) {
        self(buf)
    }
}

/// SplitMix64: a small deterministic generator. **Not cryptographic**: for
/// tests, fuzzing and non-secret values only.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator with the given seed.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    /// Seeds one from a caller-supplied [`Rng`].
    pub fn from_rng(rng: &mut dyn Rng) -> Self {
        let mut b = [0u8; 8];
        rng.fill(&mut b);
        SplitMix64(u64::from_le_bytes(b))
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A random non-zero u32.
    pub fn nonzero_u32(&mut self) -> u32 {
        loop {
            let v = self.next_u64() as u32;
            if v != 0 {
                return v;
            }
        }
    }
}

impl Rng for SplitMix64 {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_fills_odd_lengths() {
        let mut a = SplitMix64::new(1);
        let mut b = SplitMix64::new(1);
        let (mut x, mut y) = ([0u8; 13], [0u8; 13]);
        a.fill(&mut x);
        b.fill(&mut y);
        assert_eq!(x, y);
        assert_ne!(x, [0u8; 13]);
        let mut c = SplitMix64::new(2);
        c.fill(&mut y);
        assert_ne!(x, y);
        let mut closure = |b: &mut [u8]| b.fill(7);
        let mut z = [0u8; 3];
        Rng::fill(&mut closure, &mut z);
        assert_eq!(z, [7; 3]);
    }
}
