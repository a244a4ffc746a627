//! A latency histogram fine enough for percentiles in reports, small enough to keep per hour.
//!
//! Buckets are log-linear, 64 per octave above 64 µs and one per microsecond below: a bucket
//! is never wider than 1/64 of its lower bound. Each bucket also keeps its smallest and largest
//! value, so a percentile that falls in a bucket of equal values is exact, and any other is
//! within half a bucket (≤ 0.8 %) of the nearest-rank value of the raw latencies.

use std::collections::BTreeMap;
use std::time::Duration;

/// Sub-buckets per octave, as a power of two.
const SUB_BITS: u32 = 6;
const SUB_BUCKETS: u64 = 1 << SUB_BITS;

/// What one bucket holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencyBucket {
    /// Latencies counted.
    pub count: u64,
    /// The smallest, in microseconds.
    pub min_us: u64,
    /// The largest, in microseconds.
    pub max_us: u64,
}

/// Counts of check latencies (microsecond resolution) by bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    buckets: BTreeMap<u16, LatencyBucket>,
}

/// The bucket index of a latency of `us` microseconds.
pub fn latency_bucket(us: u64) -> u16 {
    if us < SUB_BUCKETS {
        return us as u16;
    }
    let octave = 63 - us.leading_zeros(); // ≥ SUB_BITS
    let shift = octave - SUB_BITS;
    let sub = (us >> shift) - SUB_BUCKETS; // 0..SUB_BUCKETS
    (SUB_BUCKETS + u64::from(shift) * SUB_BUCKETS + sub) as u16
}

impl LatencyHistogram {
    /// Counts one latency.
    pub fn add(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.add_bucket(
            latency_bucket(us),
            LatencyBucket {
                count: 1,
                min_us: us,
                max_us: us,
            },
        );
    }

    /// Adds a bucket's counts (from a stored histogram) to bucket `index`.
    pub fn add_bucket(&mut self, index: u16, bucket: LatencyBucket) {
        if bucket.count == 0 {
            return;
        }
        self.buckets
            .entry(index)
            .and_modify(|b| {
                b.count += bucket.count;
                b.min_us = b.min_us.min(bucket.min_us);
                b.max_us = b.max_us.max(bucket.max_us);
            })
            .or_insert(bucket);
    }

    /// Adds every bucket of `other`.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (&index, &bucket) in &other.buckets {
            self.add_bucket(index, bucket);
        }
    }

    /// The non-empty buckets, by index.
    pub fn buckets(&self) -> impl Iterator<Item = (u16, LatencyBucket)> + '_ {
        self.buckets.iter().map(|(&i, &b)| (i, b))
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Latencies counted.
    pub fn count(&self) -> u64 {
        self.buckets.values().map(|b| b.count).sum()
    }

    /// The nearest-rank `q`-quantile (0 < q ≤ 1), or `None` when empty. Exact when the
    /// bucket it falls in holds one value; otherwise the middle of that bucket's values.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for bucket in self.buckets.values() {
            seen += bucket.count;
            if seen >= rank {
                let middle = bucket.min_us + (bucket.max_us - bucket.min_us) / 2;
                return Some(Duration::from_micros(middle));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_narrow() {
        let mut previous = 0;
        for us in (0..5_000_000u64).step_by(7) {
            let bucket = latency_bucket(us);
            assert!(bucket >= previous, "{us}");
            previous = bucket;
        }
        // Neighbours an 1/64 apart land in different buckets.
        assert_ne!(latency_bucket(6_400), latency_bucket(6_500));
        assert!(latency_bucket(u64::MAX) > latency_bucket(u64::MAX / 2));
    }

    #[test]
    fn equal_values_give_exact_percentiles() {
        let mut h = LatencyHistogram::default();
        for _ in 0..99 {
            h.add(Duration::from_micros(12_500));
        }
        h.add(Duration::from_micros(3_000));
        assert_eq!(h.quantile(0.5), Some(Duration::from_micros(12_500)));
        assert_eq!(h.quantile(0.01), Some(Duration::from_micros(3_000)));
        assert_eq!(h.count(), 100);
    }

    #[test]
    fn spread_values_stay_within_a_bucket_of_nearest_rank() {
        let mut h = LatencyHistogram::default();
        let mut raw: Vec<u64> = (0..10_000u64)
            .map(|i| 1_000 + (i * 7_919) % 90_000)
            .collect();
        for &us in &raw {
            h.add(Duration::from_micros(us));
        }
        raw.sort_unstable();
        for q in [0.5, 0.95, 0.99] {
            let exact = raw[((q * raw.len() as f64).ceil() as usize) - 1] as f64;
            let got = h.quantile(q).unwrap().as_micros() as f64;
            assert!(
                (got - exact).abs() / exact <= 0.008,
                "{q}: {got} vs {exact}"
            );
        }
    }

    #[test]
    fn merging_equals_adding_everything_to_one() {
        let (mut a, mut b, mut all) = Default::default();
        for us in [10u64, 200, 3_000, 45_000] {
            LatencyHistogram::add(&mut a, Duration::from_micros(us));
            LatencyHistogram::add(&mut all, Duration::from_micros(us));
        }
        for us in [11u64, 3_001, 900_000] {
            LatencyHistogram::add(&mut b, Duration::from_micros(us));
            LatencyHistogram::add(&mut all, Duration::from_micros(us));
        }
        let mut merged: LatencyHistogram = a;
        merged.merge(&b);
        assert_eq!(merged, all);
    }
}
