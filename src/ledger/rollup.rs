//! Rollups: per-probe counters for an hour, a UTC day or a month that survive pruning of raw
//! results. Whoever computes them (`query::days`, from digests) stores them whole.
//!
//! Stored value: `version (u8 = 1)`, six varints (`checks, failed_checks, up_ms, degraded_ms,
//! down_ms, unknown_ms`), `n` (varint, ≤ 40: buckets stored, trailing empty ones dropped),
//! then `n` bucket counts (varints). Key: `probe_id (u32 BE) ++ kind (u8) ++ start (ordered ms)`.

use std::time::Duration;

use jiff::Timestamp;

use super::encoding::{get_varint, ordered_ms, put_varint};

/// How many latency buckets a rollup keeps.
pub const LATENCY_BUCKETS: usize = 40;

const ROLLUP_ENCODING_V1: u8 = 1;

/// Lower bound (µs) of each bucket: bucket 0 is `[0, 64 µs)`, bucket `i ≥ 1` starts at
/// `64 µs × 2^((i − 1) / 2)` — half-octave steps, so any estimate is within ±19 % — and the
/// last bucket (from ~33.6 s) is open-ended, beyond any sensible timeout.
const BUCKET_LOWER_US: [u64; LATENCY_BUCKETS] = {
    let mut lower = [0u64; LATENCY_BUCKETS];
    let mut i = 1;
    while i < LATENCY_BUCKETS {
        // 64 × 2^((i−1)/2) = sqrt(4096 × 2^(i−1)), exact in integers.
        lower[i] = (4096u64 << (i - 1)).isqrt();
        i += 1;
    }
    lower
};

/// Which calendar unit a rollup covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RollupKind {
    /// One hour: fine enough for day and week charts after raw results are pruned.
    Hour,
    /// One UTC day: what the status page's 90-day bars read (90 keys a probe, not 2,160).
    Day,
    /// One calendar month in the daemon's time zone: the unit SLAs are judged on, kept forever.
    Month,
}

impl RollupKind {
    fn code(self) -> u8 {
        match self {
            RollupKind::Hour => 0,
            RollupKind::Month => 1,
            RollupKind::Day => 2,
        }
    }
}

/// Identifies one rollup of a probe: its kind and the instant the period starts.
///
/// The ledger does not check alignment: month starts depend on the configured time zone,
/// which the caller knows and the ledger must not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RollupPeriod {
    /// Hour or month.
    pub kind: RollupKind,
    /// The first instant of the period (stored at millisecond precision).
    pub start: Timestamp,
}

/// Counters for one probe over one period. Every field adds, so rollups of disjoint sets of
/// results combine into the rollup of their union.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollup {
    /// Checks run.
    pub checks: u64,
    /// Checks that failed (outcome down).
    pub failed_checks: u64,
    /// Milliseconds counted as up.
    pub up_ms: u64,
    /// Milliseconds counted as degraded.
    pub degraded_ms: u64,
    /// Milliseconds counted as down.
    pub down_ms: u64,
    /// Milliseconds with no evidence.
    pub unknown_ms: u64,
    /// Check latencies, counted in half-octave buckets (see [`Rollup::bucket_of`]).
    pub latency_buckets: [u64; LATENCY_BUCKETS],
}

impl Default for Rollup {
    fn default() -> Self {
        Rollup {
            checks: 0,
            failed_checks: 0,
            up_ms: 0,
            degraded_ms: 0,
            down_ms: 0,
            unknown_ms: 0,
            latency_buckets: [0; LATENCY_BUCKETS],
        }
    }
}

impl Rollup {
    /// Adds `other` field by field (saturating: a counter never wraps to a small number).
    pub fn add(&mut self, other: &Rollup) {
        self.checks = self.checks.saturating_add(other.checks);
        self.failed_checks = self.failed_checks.saturating_add(other.failed_checks);
        self.up_ms = self.up_ms.saturating_add(other.up_ms);
        self.degraded_ms = self.degraded_ms.saturating_add(other.degraded_ms);
        self.down_ms = self.down_ms.saturating_add(other.down_ms);
        self.unknown_ms = self.unknown_ms.saturating_add(other.unknown_ms);
        for (mine, theirs) in self.latency_buckets.iter_mut().zip(&other.latency_buckets) {
            *mine = mine.saturating_add(*theirs);
        }
    }

    /// Counts one check's latency in its bucket.
    pub fn record_latency(&mut self, latency: Duration) {
        let bucket = &mut self.latency_buckets[Self::bucket_of(latency)];
        *bucket = bucket.saturating_add(1);
    }

    /// The bucket a latency falls in.
    pub fn bucket_of(latency: Duration) -> usize {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        BUCKET_LOWER_US.partition_point(|lower| *lower <= us) - 1
    }

    /// The latency range `[lower, upper)` of a bucket; the last one has no upper bound.
    pub fn bucket_bounds(bucket: usize) -> (Duration, Option<Duration>) {
        let lower = BUCKET_LOWER_US.get(bucket).copied().unwrap_or(u64::MAX);
        let upper = BUCKET_LOWER_US.get(bucket + 1).copied();
        (
            Duration::from_micros(lower),
            upper.map(Duration::from_micros),
        )
    }

    /// Estimates the `q` quantile (0.5 for p50, 0.99 for p99) of the recorded latencies as
    /// the geometric middle of the bucket that holds it, so the estimate is within ±19 % of
    /// the true value — what a monthly report needs and what a fixed-size, addable histogram
    /// can give. `None` without latencies or for a `q` outside `[0, 1]`.
    pub fn latency_percentile(&self, q: f64) -> Option<Duration> {
        if !(0.0..=1.0).contains(&q) {
            return None;
        }
        let total: u64 = self
            .latency_buckets
            .iter()
            .fold(0, |a, b| a.saturating_add(*b));
        if total == 0 {
            return None;
        }
        // The rank (1-based) of the wanted sample.
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0u64;
        for (bucket, &count) in self.latency_buckets.iter().enumerate() {
            seen = seen.saturating_add(count);
            if count > 0 && seen >= rank {
                let (lower, upper) = Self::bucket_bounds(bucket);
                return Some(match upper {
                    // Bucket 0 spans [0, 64 µs): its middle is as good as any.
                    _ if bucket == 0 => Duration::from_micros(32),
                    Some(_) => lower.mul_f64(2f64.powf(0.25)),
                    None => lower,
                });
            }
        }
        None
    }

    /// The stored bytes.
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24);
        out.push(ROLLUP_ENCODING_V1);
        for field in [
            self.checks,
            self.failed_checks,
            self.up_ms,
            self.degraded_ms,
            self.down_ms,
            self.unknown_ms,
        ] {
            put_varint(&mut out, field);
        }
        let used = self
            .latency_buckets
            .iter()
            .rposition(|count| *count != 0)
            .map_or(0, |last| last + 1);
        put_varint(&mut out, used as u64);
        for count in &self.latency_buckets[..used] {
            put_varint(&mut out, *count);
        }
        out
    }

    /// Parses stored bytes, rejecting anything but an exact version-1 value.
    pub(super) fn decode(bytes: &[u8]) -> Result<Rollup, String> {
        match bytes.first() {
            Some(&ROLLUP_ENCODING_V1) => {}
            Some(other) => return Err(format!("unknown rollup encoding version {other}")),
            None => return Err("empty rollup".to_owned()),
        }
        let mut pos = 1;
        let mut next = || get_varint(bytes, &mut pos).map_err(|e| format!("rollup: {e}"));
        let mut rollup = Rollup {
            checks: next()?,
            failed_checks: next()?,
            up_ms: next()?,
            degraded_ms: next()?,
            down_ms: next()?,
            unknown_ms: next()?,
            latency_buckets: [0; LATENCY_BUCKETS],
        };
        let used = next()?;
        if used > LATENCY_BUCKETS as u64 {
            return Err(format!(
                "rollup has {used} latency buckets, at most {LATENCY_BUCKETS}"
            ));
        }
        for bucket in rollup.latency_buckets.iter_mut().take(used as usize) {
            *bucket = next()?;
        }
        if pos != bytes.len() {
            return Err(format!(
                "{} trailing bytes after the rollup",
                bytes.len() - pos
            ));
        }
        Ok(rollup)
    }
}

/// The key of one rollup.
pub(super) fn rollup_key(probe_id: u32, kind: RollupKind, start_ms: i64) -> [u8; 13] {
    let mut key = [0u8; 13];
    key[..4].copy_from_slice(&probe_id.to_be_bytes());
    key[4] = kind.code();
    key[5..].copy_from_slice(&ordered_ms(start_ms));
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::encoding::tests::Rng;

    #[test]
    fn buckets_are_half_octaves() {
        assert_eq!(BUCKET_LOWER_US[..5], [0, 64, 90, 128, 181]);
        assert!(BUCKET_LOWER_US.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(Rollup::bucket_of(Duration::ZERO), 0);
        assert_eq!(Rollup::bucket_of(Duration::from_micros(63)), 0);
        assert_eq!(Rollup::bucket_of(Duration::from_micros(64)), 1);
        assert_eq!(Rollup::bucket_of(Duration::from_micros(127)), 2);
        assert_eq!(
            Rollup::bucket_of(Duration::from_secs(3600)),
            LATENCY_BUCKETS - 1
        );
        for us in [1u64, 200, 999, 12_345, 50_000, 9_000_000] {
            let d = Duration::from_micros(us);
            let (lower, upper) = Rollup::bucket_bounds(Rollup::bucket_of(d));
            assert!(lower <= d && upper.is_none_or(|u| d < u));
        }
    }

    #[test]
    fn percentiles_land_in_the_right_bucket() {
        let mut rollup = Rollup::default();
        assert_eq!(rollup.latency_percentile(0.5), None);
        for ms in 1..=100u64 {
            rollup.record_latency(Duration::from_millis(ms));
        }
        for (q, exact_ms) in [(0.5, 50.0), (0.95, 95.0), (0.99, 99.0)] {
            let estimate = rollup.latency_percentile(q).unwrap().as_secs_f64() * 1000.0;
            assert!(
                (estimate / exact_ms - 1.0).abs() < 0.2,
                "p{q}: {estimate} vs {exact_ms}"
            );
        }
        assert_eq!(rollup.latency_percentile(1.5), None);
        assert_eq!(rollup.latency_percentile(f64::NAN), None);
    }

    #[test]
    fn rollups_encode_round_trip_and_add() {
        let mut rng = Rng::new(9);
        for _ in 0..500 {
            let mut a = Rollup {
                checks: rng.next() >> rng.below(64),
                failed_checks: rng.below(1000),
                up_ms: rng.next() >> 20,
                degraded_ms: rng.below(3),
                down_ms: 0,
                unknown_ms: rng.next(),
                latency_buckets: [0; LATENCY_BUCKETS],
            };
            for _ in 0..rng.below(50) {
                a.record_latency(Duration::from_micros(rng.next() >> rng.below(64)));
            }
            assert_eq!(Rollup::decode(&a.encode()), Ok(a.clone()));
            let b = Rollup {
                checks: 1,
                down_ms: 5,
                ..Rollup::default()
            };
            let mut sum = a.clone();
            sum.add(&b);
            assert_eq!(sum.checks, a.checks.saturating_add(1));
            assert_eq!(sum.down_ms, 5);
            assert_eq!(Rollup::decode(&sum.encode()), Ok(sum));
        }
    }

    #[test]
    fn bad_rollup_bytes_are_errors() {
        let good = Rollup::default().encode();
        assert!(Rollup::decode(&[]).is_err());
        assert!(Rollup::decode(&[2]).is_err());
        assert!(Rollup::decode(&good[..good.len() - 1]).is_err());
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(Rollup::decode(&trailing).is_err());
    }
}
