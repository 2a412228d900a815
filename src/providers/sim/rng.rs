//! A small seeded generator (splitmix64): reproducible worlds and latencies without a
//! dependency.

pub struct Rng(u64);

impl Rng {
    /// A generator for one named thing (a machine, an operation) under a world seed.
    pub fn for_key(seed: u64, key: &str) -> Self {
        Self::for_parts(seed, &[key])
    }

    /// The generator `for_key` gives for the parts joined with `/`, without joining them
    /// (the planner asks once per action).
    pub fn for_parts(seed: u64, parts: &[&str]) -> Self {
        let mut hasher = blake3::Hasher::new();
        for (n, part) in parts.iter().enumerate() {
            if n > 0 {
                hasher.update(b"/");
            }
            hasher.update(part.as_bytes());
        }
        let h = hasher.finalize();
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&h.as_bytes()[..8]);
        Rng(seed ^ u64::from_le_bytes(bytes))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo { lo } else { lo + self.next_u64() % (hi - lo + 1) }
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn parts_give_the_generator_of_their_joined_key() {
        // Simulated latencies are keyed by `kind/machine/site`: worlds stay reproducible.
        let mut joined = Rng::for_key(7, "failover/vm1/dc2");
        let mut parts = Rng::for_parts(7, &["failover", "vm1", "dc2"]);
        assert_eq!(joined.next_u64(), parts.next_u64());
        assert_ne!(
            Rng::for_parts(7, &["failover", "vm1dc2"]).next_u64(),
            Rng::for_key(7, "failover/vm1/dc2").next_u64()
        );
    }
}
