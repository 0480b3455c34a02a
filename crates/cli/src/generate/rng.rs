//! A small deterministic generator (SplitMix64): the same seed gives the same data on every
//! platform and release, which a general-purpose RNG crate does not promise.

#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// An independent stream for item `index` of kind `salt`: lets chunks be made in parallel.
    pub fn for_item(seed: u64, salt: u64, index: u64) -> Self {
        let mut mix = Rng(seed ^ salt.wrapping_mul(0xA24B_AED4_963E_E407));
        let base = mix.next_u64();
        Rng(base ^ index.wrapping_mul(0x9FB2_1C65_1E98_DF25))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Skewed towards 0: index `n · u^power`; power 1 is uniform, larger is more skewed.
    pub fn skewed(&mut self, n: u64, power: f64) -> u64 {
        ((n as f64) * self.unit().powf(power)) as u64 % n.max(1)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// Picks by weight; `weights` must not be empty.
    pub fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.unit() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }

    /// 64 lowercase hex digits, the shape of the real ids.
    pub fn hex_id(&mut self) -> String {
        format!(
            "{:016x}{:016x}{:016x}{:016x}",
            self.next_u64(),
            self.next_u64(),
            self.next_u64(),
            self.next_u64()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_stream() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        assert_eq!(
            (0..5).map(|_| a.next_u64()).collect::<Vec<_>>(),
            (0..5).map(|_| b.next_u64()).collect::<Vec<_>>()
        );
        assert_eq!(
            Rng::for_item(7, 1, 3).hex_id(),
            Rng::for_item(7, 1, 3).hex_id()
        );
        assert_ne!(
            Rng::for_item(7, 1, 3).hex_id(),
            Rng::for_item(7, 1, 4).hex_id()
        );
        assert_eq!(Rng::new(1).hex_id().len(), 64);
    }

    #[test]
    fn draws_stay_in_range() {
        let mut rng = Rng::new(1);
        for _ in 0..10_000 {
            assert!(rng.below(10) < 10);
            assert!(rng.skewed(10, 3.0) < 10);
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
